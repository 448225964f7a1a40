// Command memattack starts the built server under a memory limit, fires requests built to exhaust its memory
// (huge progressive and 16-bit images, stalled bodies, oversized training jobs, zip and IDX bombs: see attacks) at it
// one case at a time (a fresh process each) and then all at once, and prints each case's peak resident set (VmHWM),
// the answers it got (-2: still stalled when the client hung up), and whether a normal /predict is served
// afterwards. Linux only; it talks to 127.0.0.1 only.
//
//	go build -o /tmp/server ./cmd/server && go run ./bench/memattack -server /tmp/server -limit 600MiB
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

const token = "memattack-token"

type server struct {
	cmd  *exec.Cmd
	base string
}

func start(bin, limit string) (*server, error) {
	dir, err := os.MkdirTemp("", "memattack")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "GRPC_ADDR=off", "ADMIN_TOKEN="+token, "MODEL_DIR="+dir+"/models",
		"DATA_DIR="+dir+"/data", "MEMORY_LIMIT="+limit, "LOG_LEVEL=error", "TRAIN_JOBS=1")
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, addr, ok := strings.Cut(sc.Text(), "listening on "); ok {
			go io.Copy(io.Discard, out)
			return &server{cmd: cmd, base: addr}, nil
		}
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("server did not start")
}

func (s *server) stop() { s.cmd.Process.Kill(); s.cmd.Wait() }

// hwm is the process's peak resident set in MiB, or -1 once it has died.
func (s *server) hwm() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb / 1024
		}
	}
	return -1
}

var client = &http.Client{Timeout: 120 * time.Second}

func (s *server) do(method, path, ct string, body []byte) int {
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0 // connection failed: the process died or hung up
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type attack struct {
	name string
	run  func(s *server) []int
}

func parallel(n int, f func(i int) int) []int {
	out := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = f(i) })
	}
	wg.Wait()
	return out
}

func multipartOf(files map[string][]byte) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, _ := mw.CreateFormFile(n, n)
		w.Write(files[n])
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func gzipIDX(header []uint32, size int) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	for _, h := range header {
		binary.Write(zw, binary.BigEndian, h)
	}
	zero := make([]byte, 1<<20)
	for size > 0 {
		n := min(size, len(zero))
		zw.Write(zero[:n])
		size -= n
	}
	zw.Close()
	return buf.Bytes()
}

// train submits a job and watches the process for up to d, then cancels the job.
func train(s *server, body string, d time.Duration) []int {
	req, _ := http.NewRequest("POST", s.base+"/train", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return []int{0}
	}
	var job struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		for end := time.Now().Add(d); time.Now().Before(end) && s.hwm() >= 0; {
			time.Sleep(200 * time.Millisecond)
		}
		s.do("DELETE", "/train/"+job.ID, "", nil)
	}
	return []int{resp.StatusCode}
}

func attacks() []attack {
	cmyk := uploadtest.ProgressiveJPEG(6324, 6324, 4)
	png16 := uploadtest.PNG16(6324, 6324)
	small16 := base64.StdEncoding.EncodeToString(uploadtest.PNG16(1024, 1024))
	jsonBody, _ := json.Marshal(map[string][]string{"images": func() []string {
		s := make([]string, 100)
		for i := range s {
			s[i] = small16
		}
		return s
	}()})
	zipped := uploadtest.SharedDataZip(cmyk, "0/a.jpg", "0/b.jpg", "1/a.jpg", "1/b.jpg")
	idxImages := gzipIDX([]uint32{0x0803, 8192, 256, 256}, 8192*256*256)
	labels := binary.BigEndian.AppendUint32(nil, 0x0801)
	labels = binary.BigEndian.AppendUint32(labels, 8192)
	labels = append(labels, make([]byte, 8192)...)
	for i := range 8192 {
		labels[8+i] = byte(i % 2)
	}
	idxBody, idxCT := multipartOf(map[string][]byte{"images": idxImages, "labels": labels})
	return []attack{
		{"2 x CMYK progressive JPEG 6324x6324", func(s *server) []int {
			return parallel(2, func(int) int { return s.do("POST", "/predict", "image/jpeg", cmyk) })
		}},
		{"2 x 16-bit RGBA PNG 6324x6324", func(s *server) []int {
			return parallel(2, func(int) int { return s.do("POST", "/predict", "image/png", png16) })
		}},
		{"64 JSON x 100 x 1024x1024 16-bit PNG", func(s *server) []int {
			return parallel(64, func(int) int { return s.do("POST", "/predict", "application/json", jsonBody) })
		}},
		{"30 stalled 32 MiB bodies", func(s *server) []int { return stalled(s, 30, 32<<20) }},
		{"train lbfgs [2048,2048]", func(s *server) []int {
			return train(s, `{"hidden":[2048,2048],"optimizer":"lbfgs","epochs":1,"activate":"never"}`, 20*time.Second)
		}},
		{"train adam [4096,4096,4096] batch 8192", func(s *server) []int {
			return train(s, `{"hidden":[4096,4096,4096],"optimizer":"adam","batch_size":8192,"epochs":1,"activate":"never"}`, 20*time.Second)
		}},
		{"zip: 4 entries -> one 40 Mpx JPEG", func(s *server) []int {
			return []int{s.do("POST", "/datasets", "application/zip", zipped)}
		}},
		{"gzipped IDX 8192 x 256x256", func(s *server) []int {
			return []int{s.do("POST", "/datasets", idxCT, idxBody)}
		}},
	}
}

// stalled opens n connections that each send all but one byte of a size-byte body, waits until each is answered or
// has been given 5 s, then hangs up.
func stalled(s *server, n, size int) []int {
	addr := strings.TrimPrefix(s.base, "http://")
	return parallel(n, func(int) int {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", size)
		chunk := make([]byte, 1<<20)
		for left := size - 1; left > 0; left -= len(chunk) {
			if _, err := c.Write(chunk[:min(left, len(chunk))]); err != nil {
				break
			}
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return -2 // still stalled when we hung up
		}
		resp.Body.Close()
		return resp.StatusCode
	})
}

func ok(codes []int) bool {
	for _, c := range codes {
		if !((c >= 200 && c < 300) || c == -2 || (c >= 400 && c < 500) || c == 503 || c == 504) {
			return false
		}
	}
	return true
}

func main() {
	bin := flag.String("server", "", "path of the built server binary")
	limit := flag.String("limit", "600MiB", "MEMORY_LIMIT to start it with")
	flag.Parse()
	one := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 4; y < 24; y++ {
		one.Pix[y*28+13], one.Pix[y*28+14] = 255, 255
	}
	digit := uploadtest.EncodePNG(one)
	list := attacks()
	all := attack{"all of the above at once", func(s *server) []int {
		var mu sync.Mutex
		var codes []int
		parallel(len(list), func(i int) int {
			c := list[i].run(s)
			mu.Lock()
			codes = append(codes, c...)
			mu.Unlock()
			return 0
		})
		return codes
	}}
	fmt.Printf("| case | peak VmHWM MiB | answers | all 200/4xx/503 | /predict after |\n|---|---|---|---|---|\n")
	for _, a := range append(list, all) {
		s, err := start(*bin, *limit)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		codes := a.run(s)
		peak := s.hwm()
		after := s.do("POST", "/predict", "image/png", digit)
		counts := map[int]int{}
		for _, c := range codes {
			counts[c]++
		}
		if peak < 0 {
			peak = -1
		}
		fmt.Printf("| %s | %d | %v | %v | %d |\n", a.name, peak, counts, ok(codes), after)
		s.stop()
	}
}

package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
)

// The model file format, version 1, little-endian:
//
//	magic      8 bytes  "PCPTRON\n"
//	version    uint32   format version (1)
//	headerLen  uint32   length of the JSON header, at most MaxHeaderBytes
//	header     JSON     Info: architecture, labels, preprocessing, data set, metrics, hyper-parameters, created time
//	paramCount uint64   number of float32 parameters; must equal what the architecture needs
//	params     float32  every layer's weights (In x Out, row-major) then its biases, layer by layer; then, when the
//	                    header has a gate, the gate network's in the same layout
//	checksum   32 bytes SHA-256 of everything before it
//
// The header is readable with `head -c 2000 file`, so a file explains itself; the checksum catches truncation and
// corruption anywhere, and the parameter count catches a header and a payload that disagree.
const (
	fileMagic      = "PCPTRON\n"
	FormatVersion  = 1
	MaxHeaderBytes = 1 << 20
	// MaxFileBytes bounds a whole model file: MaxParams float32 values plus the header and framing.
	MaxFileBytes = MaxParams*4 + MaxHeaderBytes + 1024
)

// ErrFormat is wrapped by every error about a malformed model file.
var ErrFormat = errors.New("invalid model file")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Encode writes n in the model file format.
func Encode(w io.Writer, n *Network) error {
	if err := n.check(); err != nil {
		return fmt.Errorf("model: encode: %w", err)
	}
	if (n.Gate == nil) != (n.GateMLP == nil) || n.Gate != nil && !slices.Equal(n.Gate.Layers, n.GateMLP.Sizes) {
		return fmt.Errorf("model: encode: the gate's header and network disagree")
	}
	header, err := json.Marshal(n.Info)
	if err != nil {
		return fmt.Errorf("model: encode header: %w", err)
	}
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	var buf bytes.Buffer
	buf.WriteString(fileMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(FormatVersion))
	binary.Write(&buf, binary.LittleEndian, uint32(len(header)))
	buf.Write(header)
	all := n.allParams()
	binary.Write(&buf, binary.LittleEndian, uint64(len(all)))
	if _, err := mw.Write(buf.Bytes()); err != nil {
		return err
	}
	params := make([]byte, 4*len(all))
	for i, p := range all {
		binary.LittleEndian.PutUint32(params[4*i:], math.Float32bits(p))
	}
	if _, err := mw.Write(params); err != nil {
		return err
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// Marshal returns the encoded bytes of n.
func Marshal(n *Network) ([]byte, error) {
	var b bytes.Buffer
	err := Encode(&b, n)
	return b.Bytes(), err
}

// Decode reads a model file. It refuses, with an error wrapping ErrFormat that says what is wrong, a file that is
// truncated, corrupted (checksum), oversized, of an unknown version, whose header does not describe a valid network,
// whose parameter count disagrees with its architecture, or whose weights are not finite.
func Decode(r io.Reader) (*Network, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("model: read: %w", err)
	}
	return Unmarshal(data)
}

// Unmarshal decodes a model file held in memory (see Decode).
func Unmarshal(data []byte) (*Network, error) {
	if len(data) > MaxFileBytes {
		return nil, formatErr("larger than the %d-byte limit", MaxFileBytes)
	}
	const fixed = len(fileMagic) + 4 + 4
	if len(data) >= len(fileMagic) && string(data[:len(fileMagic)]) != fileMagic {
		return nil, formatErr("not a perceptron model (bad magic number)")
	}
	if len(data) < fixed {
		return nil, formatErr("truncated: %d bytes", len(data))
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != FormatVersion {
		return nil, formatErr("format version %d, this build reads version %d", v, FormatVersion)
	}
	hlen := int(binary.LittleEndian.Uint32(data[12:]))
	if hlen > MaxHeaderBytes {
		return nil, formatErr("header of %d bytes exceeds the %d-byte limit", hlen, MaxHeaderBytes)
	}
	if len(data) < fixed+hlen+8+sha256.Size {
		return nil, formatErr("truncated: %d bytes, header alone needs %d", len(data), fixed+hlen+8+sha256.Size)
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, formatErr("checksum mismatch: the file is corrupted or truncated")
	}

	var info Info
	dec := json.NewDecoder(bytes.NewReader(data[fixed : fixed+hlen]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return nil, formatErr("header: %v", err)
	}
	if err := info.check(); err != nil {
		return nil, formatErr("header: %v", err)
	}
	off := fixed + hlen
	count := binary.LittleEndian.Uint64(data[off:])
	off += 8
	want := ParamCount(info.Layers) + info.gateParams()
	if count != uint64(want) {
		return nil, formatErr("%d parameters stored, architecture %v needs %d", count, info.Layers, want)
	}
	if len(body)-off != 4*want {
		return nil, formatErr("%d bytes of parameters, architecture %v needs %d", len(body)-off, info.Layers, 4*want)
	}
	n := &Network{Info: info, MLP: NewMLP[float32](info.Layers, info.Activation)}
	read := func(dst []float32, first int) error {
		for i := range dst {
			p := math.Float32frombits(binary.LittleEndian.Uint32(body[off+4*(first+i):]))
			if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
				return formatErr("parameter %d is %v", first+i, p)
			}
			dst[i] = p
		}
		return nil
	}
	if err := read(n.MLP.Params, 0); err != nil {
		return nil, err
	}
	if g := info.Gate; g != nil {
		n.GateMLP = NewMLP[float32](g.Layers, g.Activation)
		if err := read(n.GateMLP.Params, len(n.MLP.Params)); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Load reads a model file from disk.
func Load(path string) (*Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s: %w", path, formatErr("%d bytes, larger than the %d-byte limit", st.Size(), MaxFileBytes))
	}
	n, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// Save writes n to path atomically: into a temporary file in the same folder, synced, then renamed over path, so a
// crash leaves either the old file or the new one, never half of one.
func Save(path string, n *Network) error {
	data, err := Marshal(n)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}

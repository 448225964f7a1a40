// Package atomicfile writes a file so that readers, and the file system after a crash, see either its old content
// or the new one, never a part of either: the data goes to a temporary file in the same folder, which is synced,
// renamed over the target and followed by a sync of the folder, so the rename itself survives a power cut.
//
// It knows nothing of what the files hold. Callers that publish a whole folder at once (package uploads) write its
// files here and make the folder's own rename durable with SyncDir.
package atomicfile

import (
	"bufio"
	"os"
	"path/filepath"
)

// Write replaces path with data atomically. The file is readable by everyone (0644): other replicas and operators
// read what the service writes.
func Write(path string, data []byte) error {
	return WriteFunc(path, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc replaces path atomically with what write puts into the buffered writer it is given. When write fails,
// path is left as it was and write's error is returned.
func WriteFunc(path string, write func(*bufio.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	w := bufio.NewWriterSize(f, 1<<16)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes 0600
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	SyncDir(dir)
	return nil
}

// SyncDir makes the renames and creations in dir durable. It is best effort: some file systems cannot sync a
// folder, and the data itself was synced before the rename.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

package uploads

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"strings"
)

// maxPathBytes caps an entry's whole name, as most file systems cap one component.
const maxPathBytes = 255

// file is one archive member that should hold an image: its cleaned name, split at slashes, and its bytes.
type file struct {
	name  string   // cleaned, components joined by "/"
	parts []string // the components, none empty, "." or ".."
	data  []byte
}

// walker calls visit for every file of an archive that is not skipped, in archive order, and stops at the first
// error, from the archive or from visit.
type walker func(visit func(file) error) error

// Archive formats, as recorded in Info.Source.
const (
	sourceZip   = "zip"
	sourceTarGz = "tar.gz"
	sourceTar   = "tar"
	sourceIDX   = "idx"
)

// openArchive recognises the archive format from data's first bytes.
func openArchive(data []byte, lim Limits) (format string, walk walker, err error) {
	switch {
	case len(data) == 0:
		return "", nil, invalidf("", "the upload is empty")
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return sourceZip, func(visit func(file) error) error { return walkZip(data, lim, visit) }, nil
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return sourceTarGz, func(visit func(file) error) error {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return invalidf("", "not a readable gzip stream: %v", err)
			}
			return walkTar(zr, lim, visit)
		}, nil
	case len(data) >= 263 && string(data[257:262]) == "ustar":
		return sourceTar, func(visit func(file) error) error { return walkTar(bytes.NewReader(data), lim, visit) }, nil
	case len(data) >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 8 && (data[3] == 1 || data[3] == 3):
		return "", nil, invalidf("", "this is an IDX file, not an archive; upload the IDX image file and the IDX "+
			"label file together")
	}
	return "", nil, invalidf("", "not a zip or tar.gz archive")
}

// walkZip walks a zip archive. archive/zip reads the whole central directory before the first entry can be looked
// at, about 200 bytes of memory for each 46-byte record, so the records are counted first, by their signature: a
// 100 MB upload of empty records is refused before it costs a gigabyte. The count is an upper bound (the signature
// could occur by chance inside compressed data, about once in 4 GB).
func walkZip(archive []byte, lim Limits, visit func(file) error) error {
	if n := bytes.Count(archive, []byte("PK\x01\x02")); n > lim.MaxFiles {
		return tooLargef("", "the archive has more than %d entries", lim.MaxFiles)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure names are refused below, with the name
		return invalidf("", "not a readable zip archive: %v", err)
	}
	if len(zr.File) > lim.MaxFiles {
		return tooLargef("", "the archive has %d entries, more than %d", len(zr.File), lim.MaxFiles)
	}
	// The sizes the directory declares are believed when they are too large, to save the work; when they are
	// small, they are not trusted (readFile counts what is actually read).
	var declared uint64
	for _, f := range zr.File {
		if declared += min(f.UncompressedSize64, 1<<62); declared > uint64(lim.MaxUncompressedBytes) {
			return tooLargef("", "the archive declares more than %d bytes of content, the limit",
				lim.MaxUncompressedBytes)
		}
	}
	budget := lim.MaxUncompressedBytes
	at := make(map[int64]string) // where each file's data starts, to refuse entries that share it
	for _, f := range zr.File {
		parts, err := cleanPath(f.Name)
		if err != nil {
			return err
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			continue
		case mode&fs.ModeSymlink != 0:
			return invalidf(f.Name, "is a symbolic link; only images and folders are allowed")
		case !mode.IsRegular():
			return invalidf(f.Name, "is a special file (%v); only images and folders are allowed", mode.Type())
		case len(parts) == 0:
			return invalidf(f.Name, "a file without a name")
		case skipped(parts):
			continue
		case f.Flags&0x1 != 0:
			return invalidf(f.Name, "is encrypted")
		case f.UncompressedSize64 > uint64(lim.MaxFileBytes):
			return tooLargef(f.Name, "expands to %d bytes, more than the limit of %d per file", f.UncompressedSize64,
				lim.MaxFileBytes)
		}
		// Entries whose directory records point at the same data would each be decoded again: an archive of a few
		// hundred kilobytes could name one large image thousands of times.
		if off, err := f.DataOffset(); err == nil {
			if other, dup := at[off]; dup {
				return invalidf(f.Name, "points at the same data as %q", other)
			}
			at[off] = f.Name
		}
		rc, err := f.Open()
		if err != nil {
			return invalidf(f.Name, "cannot be read: %v", err)
		}
		data, err := readFile(rc, f.Name, lim.MaxFileBytes, &budget, lim.MaxUncompressedBytes)
		rc.Close()
		if err != nil {
			return err
		}
		if err := visit(file{name: strings.Join(parts, "/"), parts: parts, data: data}); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads one archive member, refusing it once it is larger than perFile or than what is left of the
// budget for the whole archive, which it then reduces. It reads at most one byte past the limit, whatever the
// member's header claims.
func readFile(r io.Reader, name string, perFile int64, budget *int64, total int64) ([]byte, error) {
	limit := min(perFile, *budget)
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if errors.Is(err, errExpanded) {
		return nil, tooLargef("", "the archive expands to more than %d bytes", total)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, invalidf(name, "is truncated")
	}
	if errors.Is(err, zip.ErrFormat) {
		return nil, invalidf(name, "is corrupt, or larger than the archive's directory says")
	}
	if err != nil {
		return nil, invalidf(name, "cannot be read: %v", err)
	}
	if int64(len(data)) > limit {
		if limit == perFile {
			return nil, tooLargef(name, "expands to more than the limit of %d bytes per file", perFile)
		}
		return nil, tooLargef("", "the archive expands to more than %d bytes", total)
	}
	*budget -= int64(len(data))
	return data, nil
}

// errExpanded is returned by a budgetReader that ran out.
var errExpanded = errors.New("archive expands past the limit")

// budgetReader counts every decompressed byte of a tar stream, headers and skipped members included, and fails with
// errExpanded once there are more than n.
type budgetReader struct {
	r io.Reader
	n int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n < 0 {
		return 0, errExpanded
	}
	if int64(len(p)) > b.n+1 {
		p = p[:b.n+1]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if b.n < 0 {
		return n, errExpanded
	}
	return n, err
}

// walkTar walks a tar stream (already decompressed, if it was gzip).
func walkTar(r io.Reader, lim Limits, visit func(file) error) error {
	br := &budgetReader{r: r, n: lim.MaxUncompressedBytes}
	tr := tar.NewReader(br)
	budget := lim.MaxUncompressedBytes // a tighter bound for the per-file check; br counts everything
	for n := 0; ; n++ {
		h, err := tr.Next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, errExpanded):
			return tooLargef("", "the archive expands to more than %d bytes", lim.MaxUncompressedBytes)
		case errors.Is(err, io.ErrUnexpectedEOF) && n == 0:
			return invalidf("", "not a tar archive, or a truncated one")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return invalidf("", "the archive is truncated")
		case err != nil && !errors.Is(err, tar.ErrInsecurePath):
			return invalidf("", "not a readable tar archive: %v", err)
		}
		if n >= lim.MaxFiles {
			return tooLargef("", "the archive has more than %d entries", lim.MaxFiles)
		}
		parts, err := cleanPath(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		case tar.TypeSymlink:
			return invalidf(h.Name, "is a symbolic link; only images and folders are allowed")
		case tar.TypeLink:
			return invalidf(h.Name, "is a hard link; only images and folders are allowed")
		case tar.TypeChar, tar.TypeBlock:
			return invalidf(h.Name, "is a device; only images and folders are allowed")
		case tar.TypeFifo:
			return invalidf(h.Name, "is a named pipe; only images and folders are allowed")
		default:
			return invalidf(h.Name, "has the unsupported entry type %q; only images and folders are allowed",
				h.Typeflag)
		}
		switch {
		case len(parts) == 0:
			return invalidf(h.Name, "a file without a name")
		case skipped(parts):
			continue
		case h.Size > lim.MaxFileBytes:
			return tooLargef(h.Name, "is %d bytes, more than the limit of %d per file", h.Size, lim.MaxFileBytes)
		}
		data, err := readFile(tr, h.Name, lim.MaxFileBytes, &budget, lim.MaxUncompressedBytes)
		if err != nil {
			return err
		}
		if err := visit(file{name: strings.Join(parts, "/"), parts: parts, data: data}); err != nil {
			return err
		}
	}
}

// cleanPath checks an entry's name and splits it into components, dropping empty and "." ones (tar writes
// "./cat/1.png"). The name is never used to open a file, but a name that would escape a folder when extracted
// marks a crafted archive, and is refused rather than guessed at.
func cleanPath(name string) ([]string, error) {
	switch {
	case name == "":
		return nil, invalidf(name, "an entry without a name")
	case len(name) > maxPathBytes:
		return nil, invalidf(name[:40]+"...", "the name is %d bytes long, more than %d", len(name), maxPathBytes)
	case strings.ContainsRune(name, '\\'):
		return nil, invalidf(name, "the name contains a backslash; use / to separate folders")
	case strings.ContainsRune(name, 0):
		return nil, invalidf(name, "the name contains a NUL byte")
	case name[0] == '/':
		return nil, invalidf(name, "the name is an absolute path")
	case len(name) >= 2 && name[1] == ':' && ('a' <= name[0]|0x20 && name[0]|0x20 <= 'z'):
		return nil, invalidf(name, "the name starts with a drive letter")
	}
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for p := range strings.SplitSeq(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, invalidf(name, "the name has a .. component")
		default:
			parts = append(parts, p)
		}
	}
	return parts, nil
}

// skipped reports whether a file is one of the by-products of zipping a folder on macOS or browsing one on Windows,
// or is hidden: everything under __MACOSX, every component starting with a dot, Thumbs.db and desktop.ini.
func skipped(parts []string) bool {
	for _, p := range parts {
		if p == "__MACOSX" || strings.HasPrefix(p, ".") {
			return true
		}
	}
	base := parts[len(parts)-1]
	return strings.EqualFold(base, "Thumbs.db") || strings.EqualFold(base, "desktop.ini")
}

// describe names what non-image bytes look like, for the message that refuses them.
func describe(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte{0x1f, 0x8b}),
		len(data) >= 263 && string(data[257:262]) == "ustar":
		return "is an archive; nested archives are not extracted"
	case len(data) == 0:
		return "is empty"
	}
	return "is not an image (PNG, JPEG, GIF, BMP, TIFF or WebP)"
}

// Package uploads keeps the labelled data sets that users upload for training, one folder per set under
// DATA_DIR/sets, and the Catalog that finds a training set by name (MNIST or an uploaded set's id).
//
// An upload is either an archive or a pair of IDX files. An archive is a zip, a gzip-compressed tar or a plain tar,
// recognised from its first bytes rather than its name, whose top-level folders are the class labels and hold the
// images (cat/001.jpg, dog/002.png). A single top-level folder that holds all the class folders is taken for the
// wrapper that zipping a folder produces and is stripped; its name becomes the set's default name. Folders below a
// class folder are allowed and belong to that class. macOS resource forks (__MACOSX), dotfiles (.DS_Store, ._x.jpg)
// and Windows' Thumbs.db and desktop.ini are skipped. Every other file must be an image that package imageprep
// decodes (PNG, JPEG, GIF, BMP, TIFF, WebP): a text file, a nested archive (never extracted) or a corrupt image
// refuses the whole upload with a message that names the file, rather than silently training on less than the user
// thinks. The IDX pair is the format MNIST ships in (images, and labels that are class indices).
//
// Every image goes through imageprep with the preprocessing chosen for the set ("resize" for photos, the default for
// archives; "mnist" for digits, the default for IDX), into Width x Height bytes (0 background .. 255 ink or bright).
// The mode is recorded with the set, so a model trained on it is served with the same preprocessing, and the stored
// examples are what the model will see at serving time.
//
// Uploads are hostile until proven otherwise. The Limits cap the upload's size, its number of entries, the bytes it
// expands to in total and per file (counted while decompressing, never taken from the archive's own headers, so a
// zip or tar bomb is refused after at most the limit's worth of work), the pixels of an image before it is decoded,
// and the size of the stored set. Entry names are checked (no absolute paths, drive letters, ".." components,
// backslashes, NUL bytes, or names over 255 bytes) although they are never used as file names: only decoded pixels
// reach the disk. Links, devices and other special entries in a tar are refused; so are encrypted zip entries.
//
// A stored set is a folder <store>/<id> (the service's store is DATA_DIR/sets) holding the images as a gzip IDX3
// file, the labels as a gzip IDX1 file and info.json. It is written to a hidden temporary folder and renamed into
// place, so a crash never leaves a partial set that List would show. Ids ("ds-" and 16 hex digits) are random and
// checked against that pattern on every lookup, so an id can never name a path outside the store. Other folders in
// the store's folder are left alone.
//
// What does not live here: the in-memory Set, the IDX file format (read and written) and MNIST itself (package
// dataset), the image decoding and preprocessing (package imageprep), and the HTTP endpoints (package api), which map
// ErrInvalid, ErrTooLarge and ErrNotFound to responses.
package uploads

// Package imageprep turns uploaded image bytes into the input vector of a classifier, safely.
//
// It has two halves. Decode (decode.go) guards the decoders: it recognises PNG, JPEG, GIF, BMP, TIFF and WebP by their
// first bytes, reads only the header to learn the dimensions, refuses an image of more pixels than Limits allow before
// a byte of pixel memory is allocated (a 100-byte PNG may claim 100000x100000 pixels), and turns every failure into one
// of three errors that map onto HTTP statuses: ErrUnsupported (415), ErrTooLarge (413), ErrUndecodable (422). A JPEG
// comes back turned upright as its EXIF Orientation says (orient.go), and PrepareBytes reads small 8-bit PNGs, the
// common upload, with a decoder that reuses its buffers (pngfast.go) and inflates a whole zlib stream in one call
// (inflate.go), leaving to compress/flate whatever it is not sure of.
//
// Prepare then makes the vector a model expects, as a Spec says (a model file records its size and mode):
//
//   - "resize", for photos: luminance, and the whole image resized to the input size by area averaging (bilinear when
//     enlarging). Nothing else, so the model sees what it was trained on. With Spec.Channels 3 the red, green and
//     blue planes are each resized the same way, one after the other (colour.go).
//   - "mnist", for digits: make any upload look like an MNIST digit, white ink on black, fitted into 20x20 and centred
//     by centre of mass in 28x28. A network trained on MNIST only knows that picture; every step below removes one way
//     in which real uploads differ from it.
//
// The mnist steps, in order, each in its own file; Preparer.mnist (prepare.go) is the list of them. Clean images (MNIST
// itself, rendered digits, canvas drawings), whose background is one exact value, take steps 3 to 5 at once
// (flatBackground, flatInk), since they need no noise model and no fitted background. An upload that is MNIST-like
// already (8-bit gray or opaque gray-looking pixels on a flat field within 0.02 of black or of white, at most 256
// pixels a side) takes fastpath.go instead, which makes the same vector bit for bit with the steps that are no-ops on
// it left out and the rest done on 8-bit levels (up to 64 pixels wide, on rows of bits: fastbits.go); so does, with
// fewer shortcuts, a canvas drawing (RGBA or NRGBA ink on a transparent field) of at most 256 pixels a side.
//
//  1. Working size (luma.go). An image larger than 256 pixels on a side is area-averaged by an integer factor, reading
//     the pixel slices of the common image types directly (not through image.Image.At, which allocates per pixel), so a
//     3000x3000 photo costs one pass over its pixels and every later step works on at most 256x256 values.
//  2. Luminance, compositing alpha (luma.go). A canvas drawing (toDataURL PNG) has opaque strokes on a fully
//     transparent background whose colour channels mean nothing; it is composited over the colour that contrasts with
//     the strokes (white behind black strokes, black behind white ones), so alpha in effect becomes the ink.
//  3. Polarity (polarity.go). Paper is light and ink dark in photos and scans, the reverse of MNIST. The background is
//     the side of an Otsu threshold that holds most of the border and most of the area (two votes: a tight crop's
//     strokes touch the border, and a bold digit can fill most of its crop, but rarely both at once). When the edge is
//     all one colour and the ring just inside it nearly all the other (a frame around a scan, a margin around a
//     screenshot), the inner ring votes for the border.
//  4. Background removal (background.go). A smooth surface (a quadratic, when it explains the background much better
//     than a constant) is fitted to the background pixels and subtracted, so uneven lighting and a coloured or grey
//     paper become zero.
//  5. Contrast and noise (contrast.go). Ink strength is scaled so the strokes reach 1, whatever the pen and the
//     exposure; pixels within a few noise deviations of the background, or under 5% of the ink strength, become 0. When
//     the ink is no stronger than the noise, or weaker than 8% of full scale, the image has no digit and the vector is
//     all zeros: a blank page must not turn into amplified paper texture.
//  6. Specks and rules (components.go). Ruled lines, frames and form boxes (straight lines half the image long and ten
//     times longer than thick; outlines half the image both ways with their ink along their box's edges) are erased
//     when another group of ink remains, which is then the digit; a rule that touches the digit is part of it and
//     stays. Then connected groups of ink much lighter than the heaviest one (dust, JPEG ringing, a stray dot) are
//     erased, so they cannot stretch the bounding box. When the digit is small in a large image (a corner of a scanned
//     page), the steps so far run once more on a crop around it, so it is analysed at up to 256 pixels rather than at
//     the page's working size.
//  7. Stroke width (stroke.go). MNIST's pens drew strokes about a tenth as wide as the digit is tall. Strokes far
//     outside that range (a marker's, a hairline pen's on a large canvas), measured as twice the median depth of the
//     strokes' ridges, are eroded or dilated into it; a network trained on MNIST reads bold strokes as an 8. Digits at
//     MNIST's own size, too coarse to measure, are left alone. Ink far deeper than any stroke (a filled disc, a
//     square, a blot: its deepest pixel more than 0.4 of the digit's size from the paper) has no stroke structure and
//     is no digit.
//  8. Crop and fit (fit.go). The ink's bounding box is scaled, keeping its aspect ratio, so its longer side is 20
//     pixels, with area averaging (anti-aliased, as MNIST's were), and brightened so its strongest pixel is 1.
//  9. Centre of mass (fit.go). The 20x20 patch is placed in 28x28 so its centre of mass is at the centre, as MNIST did.
//
// For input sizes other than 28x28 the box is 20/28 of the field. A Preparer holds the scratch buffers, so a worker
// that keeps one allocates nothing per image; the package-level functions take one from a pool. Two tools serve several
// steps: resample.go (area averaging and bilinear kernels) and stats.go (histograms, Otsu's threshold, quantiles).
//
// What does not live here: choosing a model, batching and inference (package inference), the mapping of errors to HTTP
// responses (package api), and models themselves: a caller converts a model's input to a Spec, so this package never
// imports package model. Test uploads in every form are made by package uploadtest.
package imageprep

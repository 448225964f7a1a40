package imageprep

const (
	// minDigitShare is the least mass, as a fraction of the heaviest component's, that must remain besides ruled
	// lines, frames and boxes for them to be dropped: less than that is a stray mark, not the digit.
	minDigitShare = 0.25
	// minComponent drops connected specks whose ink mass is below this fraction of the heaviest component's, so that
	// a dust speck far from the digit does not stretch its bounding box.
	minComponent = 0.03
)

// keepComponents finds the 8-connected groups of ink pixels, erases those much lighter than the heaviest (specks of
// noise or dust), and returns the bounding box [x0, x1) x [y0, y1) of what is left.
//
// It labels runs rather than pixels: each row's horizontal runs of ink are joined (union-find) with the runs of the
// row above that touch them, diagonals included. A digit is a few dozen runs, so the work is one pass over the
// pixels to find the runs and a little per run, with no per-pixel neighbour checks.
func (p *Preparer) keepComponents(ink []float32, w, h int) (x0, y0, x1, y1 int, ok bool) {
	runs := p.runs[:0]
	above := 0 // first run of the previous row
	for y := range h {
		row := ink[y*w:][:w]
		here := len(runs)
		j := above // runs of the previous row are sorted by x: j walks them once per row
		for x := 0; x < w; {
			if row[x] == 0 {
				x++
				continue
			}
			a := x
			var m float64
			for ; x < w && row[x] != 0; x++ {
				m += float64(row[x])
			}
			runs, j = linkRun(runs, here, j, inkRun{y: int32(y), x0: int32(a), x1: int32(x), mass: m})
		}
		above = here
	}
	p.runs = runs
	x0, y0, x1, y1, ok = p.keptBox(w, h)
	if !ok {
		return 0, 0, 0, 0, false
	}
	for i := range runs {
		if r := &runs[i]; r.drop {
			clear(ink[int(r.y)*w+int(r.x0) : int(r.y)*w+int(r.x1)])
		}
	}
	return x0, y0, x1, y1, true
}

// linkRun appends the run r of the row whose first run is at here, and joins it with the runs of the row above that
// touch it, from j on (they are sorted by x, and j walks them once per row). It returns the runs and the next j.
func linkRun(runs []inkRun, here, j int, r inkRun) ([]inkRun, int) {
	id := int32(len(runs))
	r.parent = id
	runs = append(runs, r)
	a, x := r.x0, r.x1
	// A run of the row above touches [a, x) diagonally when it overlaps [a-1, x+1).
	for j < here && runs[j].x1 < a {
		j++
	}
	for k := j; k < here && runs[k].x0 <= x; k++ {
		union(runs, id, int32(k))
	}
	// The last run touched may reach past this one and touch the next run of this row as well.
	for j < here && runs[j].x1 <= x {
		j++
	}
	return runs, j
}

// keptBox groups p.runs, linked by linkRun, into components, marks as drop the runs of the specks and rules
// keepComponents erases, and returns the bounding box [x0, x1) x [y0, y1) of the rest. ok is false when there is no
// ink.
func (p *Preparer) keptBox(w, h int) (x0, y0, x1, y1 int, ok bool) {
	runs := p.runs
	if len(runs) == 0 {
		return 0, 0, 0, 0, false
	}
	// Component masses gather at the roots; find also leaves every run pointing straight at its root.
	for i := range runs {
		runs[find(runs, int32(i))].total += runs[i].mass
	}
	var heaviest float64
	roots := 0
	for i := range runs {
		if runs[i].parent == int32(i) {
			heaviest = max(heaviest, runs[i].total)
			roots++
		}
	}
	if heaviest == 0 {
		return 0, 0, 0, 0, false
	}
	x0, y0, x1, y1 = w, h, 0, 0
	if roots == 1 {
		// One component keeps all its ink: were it a rule, nothing else would be left to weigh more than
		// minDigitShare of it, and it is the heaviest.
		for i := range runs {
			r := &runs[i]
			x0, y0, x1, y1 = min(x0, int(r.x0)), min(y0, int(r.y)), max(x1, int(r.x1)), max(y1, int(r.y)+1)
		}
		return x0, y0, x1, y1, true
	}
	// Rules (ruled lines, frames, boxes) go when something else of weight remains: then that is the digit.
	ref := heaviest
	if rules, rest := p.findRules(w, h); rules && rest >= minDigitShare*heaviest {
		ref = rest
	} else {
		for i := range p.comps {
			p.comps[i].rule = false
		}
	}
	for i := range runs {
		r := &runs[i]
		if c := &p.comps[runs[r.parent].comp]; c.rule || runs[r.parent].total < minComponent*ref {
			r.drop = true
			continue
		}
		x0, y0, x1, y1 = min(x0, int(r.x0)), min(y0, int(r.y)), max(x1, int(r.x1)), max(y1, int(r.y)+1)
	}
	return x0, y0, x1, y1, true
}

// inkRun is a horizontal run [x0, x1) of ink pixels in row y, a node of keepComponents' union-find.
type inkRun struct {
	y, x0, x1 int32
	parent    int32   // union-find parent; after find, the component's root
	comp      int32   // index of the component's shape in Preparer.comps, valid at its root
	mass      float64 // ink in this run
	total     float64 // ink in the component, valid at its root
	drop      bool    // a speck's or a rule's, to erase
}

// component is the shape of a connected group of ink: its bounding box [x0, x1) x [y0, y1), its pixels, and how
// many of them lie in a band along the box's edges.
type component struct {
	x0, y0, x1, y1 int32
	pixels, edge   int32
	mass           float64
	line, rule     bool
}

// findRules measures every component of p.runs (whose parents are their roots) and marks the rules: straight lines
// at least half the image long and ten times longer than thick (a ruled line, a form's underline), and outlines
// covering at least half the image both ways with nine tenths of their pixels near the edges of their box (a frame
// around a scan, a form field's box). A digit is neither: even a 1 is rarely ten times longer than thick, and a 0's
// curve leaves its box's sides. It reports whether there are rules, and the mass of the heaviest other component.
func (p *Preparer) findRules(w, h int) (rules bool, rest float64) {
	runs := p.runs
	comps := p.comps[:0]
	for i := range runs {
		root := &runs[runs[i].parent]
		if runs[i].parent == int32(i) {
			root.comp = int32(len(comps))
			comps = append(comps, component{x0: int32(w), y0: int32(h), mass: root.total})
		}
	}
	for i := range runs {
		r := &runs[i]
		c := &comps[runs[r.parent].comp]
		c.x0, c.x1 = min(c.x0, r.x0), max(c.x1, r.x1)
		c.y0, c.y1 = min(c.y0, r.y), max(c.y1, r.y+1)
		c.pixels += r.x1 - r.x0
	}
	for i := range runs {
		r := &runs[i]
		c := &comps[runs[r.parent].comp]
		t := max(1, min(c.x1-c.x0, c.y1-c.y0)/10)
		if r.y < c.y0+t || r.y >= c.y1-t {
			c.edge += r.x1 - r.x0
			continue
		}
		// The parts of the run within t of the box's left and right sides.
		c.edge += max(0, min(r.x1, c.x0+t)-r.x0) + max(0, r.x1-max(r.x0, c.x1-t, min(r.x1, c.x0+t)))
	}
	// Shapes first; then a line is only a rule if it is at least a quarter longer than the rest of the ink is wide
	// (or tall): a ruled line or an underline is; the top bar of a 5 drawn apart from its body, or a 1 next to a
	// stray dot, is not.
	var lines bool
	for i := range comps {
		c := &comps[i]
		bw, bh := int(c.x1-c.x0), int(c.y1-c.y0)
		box := 2*bw >= w && 2*bh >= h && 10*c.edge >= 9*c.pixels
		c.line = !box && (2*bw >= w && bw >= 10*bh || 2*bh >= h && bh >= 10*bw)
		c.rule = box || c.line
		lines = lines || c.line
		if !c.rule {
			rest = max(rest, c.mass)
		}
	}
	if lines {
		// The extent of the ink that is neither a rule nor a speck next to the heaviest such component.
		ex0, ey0, ex1, ey1 := int32(w), int32(h), int32(0), int32(0)
		for i := range comps {
			if c := &comps[i]; !c.rule && c.mass >= minComponent*rest {
				ex0, ey0, ex1, ey1 = min(ex0, c.x0), min(ey0, c.y0), max(ex1, c.x1), max(ey1, c.y1)
			}
		}
		for i := range comps {
			c := &comps[i]
			if !c.line {
				continue
			}
			long := c.x1-c.x0 >= 10*(c.y1-c.y0) && 4*(c.x1-c.x0) >= 5*max(ex1-ex0, 0) ||
				c.y1-c.y0 >= 10*(c.x1-c.x0) && 4*(c.y1-c.y0) >= 5*max(ey1-ey0, 0)
			if !long {
				c.line, c.rule = false, false
				rest = max(rest, c.mass)
			}
		}
	}
	for i := range comps {
		rules = rules || comps[i].rule
	}
	p.comps = comps
	return rules, rest
}

// find returns the root of run i's component, pointing every run on the way straight at it.
func find(runs []inkRun, i int32) int32 {
	r := i
	for runs[r].parent != r {
		r = runs[r].parent
	}
	for runs[i].parent != r {
		runs[i].parent, i = r, runs[i].parent
	}
	return r
}

// union joins the components of runs a and b under the older root, so roots stay the lowest index.
func union(runs []inkRun, a, b int32) {
	ra, rb := find(runs, a), find(runs, b)
	switch {
	case ra < rb:
		runs[rb].parent = ra
	case rb < ra:
		runs[ra].parent = rb
	}
}

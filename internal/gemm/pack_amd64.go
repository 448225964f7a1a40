package gemm

// packA copies rows [i0, i0+mc) and steps [p0, p0+kc) of op(A) into dst as
// consecutive micro-panels of mr rows. Within a micro-panel the mr values of
// each step are adjacent; rows past mc are filled with zeros.
func packA(dst, a []float32, lda int, transA bool, i0, mc, p0, kc int) {
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[ir*kc : (ir+mr)*kc]
		if transA {
			// op(A)[i][p] = a[p*lda+i]: each step is a contiguous run.
			off := p0*lda + i0 + ir
			if rows == mr {
				for p := 0; p < kc; p++ {
					src := a[off : off+mr : off+mr]
					dp := d[p*mr : p*mr+mr : p*mr+mr]
					dp[0], dp[1], dp[2], dp[3], dp[4], dp[5] = src[0], src[1], src[2], src[3], src[4], src[5]
					off += lda
				}
				continue
			}
			for p := 0; p < kc; p++ {
				dp := d[p*mr : p*mr+mr]
				n := copy(dp, a[off:off+rows])
				clear(dp[n:])
				off += lda
			}
			continue
		}
		// op(A)[i][p] = a[i*lda+p]: each row is a contiguous run.
		if rows == mr {
			base := (i0+ir)*lda + p0
			r0 := a[base : base+kc]
			r1 := a[base+lda : base+lda+kc]
			r2 := a[base+2*lda : base+2*lda+kc]
			r3 := a[base+3*lda : base+3*lda+kc]
			r4 := a[base+4*lda : base+4*lda+kc]
			r5 := a[base+5*lda : base+5*lda+kc]
			for p := range r0 {
				dp := d[p*mr : p*mr+mr : p*mr+mr]
				dp[0] = r0[p]
				dp[1] = r1[p]
				dp[2] = r2[p]
				dp[3] = r3[p]
				dp[4] = r4[p]
				dp[5] = r5[p]
			}
			continue
		}
		clear(d)
		for r := 0; r < rows; r++ {
			base := (i0+ir+r)*lda + p0
			for p, v := range a[base : base+kc] {
				d[p*mr+r] = v
			}
		}
	}
}

// packB copies steps [p0, p0+kc) and columns [j0, j0+nc) of op(B) into dst as
// consecutive micro-panels of nr columns. Within a micro-panel the nr values
// of each step are adjacent; columns past nc are filled with zeros.
func packB(dst, b []float32, ldb int, transB bool, p0, kc, j0, nc int) {
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := dst[jr*kc : (jr+nr)*kc]
		if !transB {
			// op(B)[p][j] = b[p*ldb+j]: each step is a contiguous run.
			off := p0*ldb + j0 + jr
			for p := 0; p < kc; p++ {
				dp := d[p*nr : p*nr+nr]
				n := copy(dp, b[off:off+cols])
				clear(dp[n:])
				off += ldb
			}
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: each column is a contiguous run. Four
		// columns are gathered at a time to keep several read streams going.
		if cols < nr {
			clear(d)
		}
		j := 0
		for ; j+4 <= cols; j += 4 {
			base := (j0+jr+j)*ldb + p0
			s0 := b[base : base+kc]
			s1 := b[base+ldb : base+ldb+kc]
			s2 := b[base+2*ldb : base+2*ldb+kc]
			s3 := b[base+3*ldb : base+3*ldb+kc]
			for p := range s0 {
				dp := d[p*nr+j : p*nr+j+4 : p*nr+j+4]
				dp[0] = s0[p]
				dp[1] = s1[p]
				dp[2] = s2[p]
				dp[3] = s3[p]
			}
		}
		for ; j < cols; j++ {
			base := (j0+jr+j)*ldb + p0
			for p, v := range b[base : base+kc] {
				d[p*nr+j] = v
			}
		}
	}
}

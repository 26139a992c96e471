// Package resample shrinks (or enlarges) a rectangle of an 8-bit RGB image
// to a fixed output size in one separable pass, with a triangle (bilinear)
// filter whose support widens with the shrink factor, so that shrinking
// averages every source pixel instead of skipping most of them
// ("antialiasing"). The crop rectangle may have fractional edges: after a
// DCT-scaled decode, a crop chosen in full-resolution pixels lands between
// pixels of the smaller image.
package resample

import (
	"fmt"
	"math"
)

// Rect is a source rectangle in pixel units: X0 ≤ x < X1, Y0 ≤ y < Y1,
// pixel j covering [j, j+1).
type Rect struct{ X0, Y0, X1, Y1 float64 }

// Scale multiplies the rectangle's coordinates by (fx, fy).
func (r Rect) Scale(fx, fy float64) Rect {
	return Rect{r.X0 * fx, r.Y0 * fy, r.X1 * fx, r.Y1 * fy}
}

// taps are one output coordinate's source pixels and their weights.
type taps struct {
	start, n int
	off      int // into Resampler's weight slice
}

// Resampler holds the scratch memory of one goroutine; the zero value is
// ready to use and reuses its buffers from call to call.
type Resampler struct {
	xs, ys   []taps
	weights  []float32
	inter    []float32 // horizontally resampled rows
	acc      []float32
	lastSpec [6]float64
}

// RGBToCHW resamples the crop r of the w×h interleaved RGB image src (3
// bytes a pixel, rows of 3w bytes) to outW×outH and writes it to dst as
// three planes (R, G, B), each outW×outH bytes, rounding to the nearest
// level. flip mirrors the output left to right.
func (rs *Resampler) RGBToCHW(dst, src []byte, w, h int, r Rect, outW, outH int, flip bool) error {
	if w <= 0 || h <= 0 || len(src) < 3*w*h {
		return fmt.Errorf("resample: %d bytes do not hold a %d×%d RGB image", len(src), w, h)
	}
	if outW <= 0 || outH <= 0 || len(dst) < 3*outW*outH {
		return fmt.Errorf("resample: output %d×%d does not fit %d bytes", outW, outH, len(dst))
	}
	if !(r.X0 >= 0 && r.Y0 >= 0 && r.X1 <= float64(w) && r.Y1 <= float64(h) && r.X1 > r.X0 && r.Y1 > r.Y0) {
		return fmt.Errorf("resample: crop %+v is empty or outside the %d×%d image", r, w, h)
	}
	spec := [6]float64{r.X0, r.Y0, r.X1, r.Y1, float64(w), float64(h)}
	if spec != rs.lastSpec || len(rs.xs) != outW || len(rs.ys) != outH {
		rs.weights = rs.weights[:0]
		rs.xs = rs.plan(rs.xs[:0], r.X0, r.X1, w, outW)
		rs.ys = rs.plan(rs.ys[:0], r.Y0, r.Y1, h, outH)
		rs.lastSpec = spec
	}
	// Rows the vertical pass reads: a contiguous band.
	y0 := rs.ys[0].start
	last := rs.ys[outH-1]
	y1 := last.start + last.n
	rowLen := 3 * outW
	rs.inter = grow(rs.inter, (y1-y0)*rowLen)
	for y := y0; y < y1; y++ {
		rs.horizontal(rs.inter[(y-y0)*rowLen:(y-y0+1)*rowLen], src[3*w*y:3*w*(y+1)])
	}
	rs.acc = grow(rs.acc, rowLen)
	plane := outW * outH
	for oy, t := range rs.ys {
		acc := rs.acc
		clear(acc)
		for k, wt := range rs.weights[t.off : t.off+t.n] {
			row := rs.inter[(t.start+k-y0)*rowLen : (t.start+k-y0+1)*rowLen]
			for j, v := range row {
				acc[j] += wt * v
			}
		}
		r := dst[oy*outW : oy*outW+outW]
		g := dst[plane+oy*outW : plane+oy*outW+outW]
		b := dst[2*plane+oy*outW : 2*plane+oy*outW+outW]
		for ox := range outW {
			px := ox
			if flip {
				px = outW - 1 - ox
			}
			r[px] = toByte(acc[3*ox])
			g[px] = toByte(acc[3*ox+1])
			b[px] = toByte(acc[3*ox+2])
		}
	}
	return nil
}

// horizontal resamples one source row into outW RGB float triples.
func (rs *Resampler) horizontal(out []float32, row []byte) {
	for ox, t := range rs.xs {
		var r, g, b float32
		px := row[3*t.start : 3*(t.start+t.n)]
		for k, wt := range rs.weights[t.off : t.off+t.n] {
			r += wt * float32(px[3*k])
			g += wt * float32(px[3*k+1])
			b += wt * float32(px[3*k+2])
		}
		out[3*ox], out[3*ox+1], out[3*ox+2] = r, g, b
	}
}

// plan computes, for each of n outputs along an axis, the source pixels in
// [lo, hi) of a side of size pixels it averages. Output i is centred at
// lo + (i+0.5)·step in source units; the triangle filter spans `support`
// source pixels on each side, support = max(step, 1): exactly bilinear
// interpolation when enlarging, an average over the footprint when
// shrinking. Weights are normalised to sum to 1, so a flat image stays
// flat and the edges do not darken.
func (rs *Resampler) plan(ts []taps, lo, hi float64, size, n int) []taps {
	step := (hi - lo) / float64(n)
	support := max(step, 1)
	for i := range n {
		centre := lo + (float64(i)+0.5)*step
		first := max(int(math.Floor(centre-support)), 0)
		end := min(int(math.Ceil(centre+support)), size)
		off := len(rs.weights)
		var sum float64
		for j := first; j < end; j++ {
			wt := 1 - math.Abs(float64(j)+0.5-centre)/support
			if wt < 0 {
				wt = 0
			}
			rs.weights = append(rs.weights, float32(wt))
			sum += wt
		}
		// Trim zero weights at both ends: fewer taps, same result.
		ws := rs.weights[off:]
		a, b := 0, len(ws)
		for a < b && ws[a] == 0 {
			a++
		}
		for b > a && ws[b-1] == 0 {
			b--
		}
		if a == b { // cannot happen for a non-empty span; keep one pixel
			ws[0], a, b = 1, 0, 1
			sum = 1
		}
		copy(ws, ws[a:b])
		rs.weights = rs.weights[:off+b-a]
		for k := range rs.weights[off:] {
			rs.weights[off+k] = float32(float64(rs.weights[off+k]) / sum)
		}
		ts = append(ts, taps{start: first + a, n: b - a, off: off})
	}
	return ts
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func toByte(v float32) uint8 {
	v += 0.5
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v)
}

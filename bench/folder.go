package bench

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/torchrt"
)

// The image-folder loader's transforms.
const (
	// TransformTrain is RandomResizedCrop + horizontal flip.
	TransformTrain = "train"
	// TransformEval is resize to Size/0.875 + centre crop.
	TransformEval = "eval"
)

// FolderConfig is `robarch bench --workload loader --dataset
// imagefolder:DIR`: whole epochs of an image folder through robarch's
// loader and, with Peer, through torchvision's, in turn.
type FolderConfig struct {
	// Dir holds class subfolders, or train/ and val/ (or test/) with
	// class subfolders: the train transform reads train/, eval val/.
	Dir string
	// Transforms to measure, in order: TransformTrain, TransformEval.
	Transforms []string
	// Size is the output side (224), Batch the batch size (128), Workers
	// the decoding goroutines (and the peer's DataLoader processes; 2),
	// Prefetch robarch's bound on batches in flight (0: 2×Workers),
	// Epochs the epochs per transform and side (3).
	Size, Batch, Workers, Prefetch, Epochs int
	// Threads is libtorch's intra-op thread count on both sides (0: one
	// per core), used to turn bytes into normalised floats.
	Threads int
	Seed    int64
	Decoder data.Decoder
	Peer    bool
	Python  string
	// PeerMalloc is the peer's allocator, as Config.PeerMalloc.
	PeerMalloc PeerMalloc
	Logger     *slog.Logger
}

func (c FolderConfig) withDefaults() FolderConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Size, 224)
	def(&c.Batch, 128)
	def(&c.Workers, 2)
	def(&c.Epochs, 3)
	if len(c.Transforms) == 0 {
		c.Transforms = []string{TransformTrain, TransformEval}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate names the first bad field.
func (c FolderConfig) Validate() error {
	c = c.withDefaults()
	if err := c.PeerMalloc.validate(c.Peer); err != nil {
		return err
	}
	for _, t := range c.Transforms {
		if t != TransformTrain && t != TransformEval {
			return fmt.Errorf("transform %q: allowed values are %s, %s", t, TransformTrain, TransformEval)
		}
	}
	switch {
	case c.Dir == "":
		return fmt.Errorf("dataset: imagefolder needs a directory: imagefolder:DIR")
	case c.Size < 1 || c.Batch < 1 || c.Epochs < 1:
		return fmt.Errorf("image size %d, batch %d, epochs %d: all must be positive", c.Size, c.Batch, c.Epochs)
	case c.Workers < 1 || c.Prefetch < 0 || c.Threads < 0:
		return fmt.Errorf("workers %d must be positive, prefetch %d and threads %d not negative", c.Workers, c.Prefetch, c.Threads)
	}
	_, err := data.ParseDecoder(string(c.Decoder))
	return err
}

// FolderEpoch is one epoch of one side.
type FolderEpoch struct {
	Transform string  `json:"transform"`
	Epoch     int     `json:"epoch"`
	Images    int     `json:"images"`
	Seconds   float64 `json:"seconds"`
	// ImagesPerS is robarch's rate; PeerImagesPerS the peer's on the same
	// epoch number, Ratio robarch's over the peer's.
	ImagesPerS     float64 `json:"images_per_s"`
	PeerImagesPerS float64 `json:"peer_images_per_s,omitempty"`
	Ratio          float64 `json:"ratio,omitempty"`
	// RSSBytes is robarch's RSS after the epoch; PeerRSSBytes the peer's
	// main process and PeerWorkersRSSBytes its workers' together.
	RSSBytes            int64 `json:"rss_bytes"`
	PeerRSSBytes        int64 `json:"peer_rss_bytes,omitempty"`
	PeerWorkersRSSBytes int64 `json:"peer_workers_rss_bytes,omitempty"`
}

// FolderReport is a whole image-folder loader benchmark.
type FolderReport struct {
	Dir      string `json:"dir"`
	Size     int    `json:"size"`
	Batch    int    `json:"batch"`
	Workers  int    `json:"workers"`
	Prefetch int    `json:"prefetch"`
	Threads  int    `json:"threads"`
	Decoder  string `json:"decoder"`
	Torch    string `json:"peer_torch,omitempty"`
	// PeerMalloc is the peer's allocator, set when a peer ran.
	PeerMalloc PeerMalloc    `json:"peer_malloc,omitempty"`
	Epochs     []FolderEpoch `json:"epochs"`
	// PeakRSSBytes is robarch's peak RSS over the run.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
}

// folderDir is where a transform reads: DIR/train or DIR/val (DIR/test),
// or DIR itself when it holds the classes directly.
func folderDir(dir, transform string) string {
	names := []string{"train"}
	if transform == TransformEval {
		names = []string{"val", "test"}
	}
	for _, n := range names {
		if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.IsDir() {
			return filepath.Join(dir, n)
		}
	}
	return dir
}

// RunFolder measures cfg: for each transform, Epochs epochs of robarch's
// loader (decode, crop, flip, bytes to normalised float tensors) and of
// the peer's, alternating which side goes first so that neither always
// meets a cold cache or a busy machine.
func RunFolder(ctx context.Context, cfg FolderConfig) (*FolderReport, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	torchrt.Init(cfg.Threads)
	rep := &FolderReport{Dir: cfg.Dir, Size: cfg.Size, Batch: cfg.Batch, Workers: cfg.Workers,
		Threads: torchrt.Threads(), Decoder: decoderName(cfg.Decoder)}
	for _, tf := range cfg.Transforms {
		dir := folderDir(cfg.Dir, tf)
		src, err := data.NewImageFolder(dir, cfg.Size, tf == TransformTrain)
		if err != nil {
			return nil, err
		}
		src.Decoder = cfg.Decoder
		l, err := data.NewLoader(src, data.LoaderConfig{BatchSize: cfg.Batch, Shuffle: tf == TransformTrain, Seed: cfg.Seed,
			Augment: data.Augment{HFlip: tf == TransformTrain}, Workers: cfg.Workers, Prefetch: cfg.Prefetch, Reuse: true})
		if err != nil {
			return nil, err
		}
		rep.Prefetch = l.Config().Prefetch
		var p *peer
		if cfg.Peer {
			if p, err = startPeerScript(cfg.Python, "loader_peer.py", cfg.PeerMalloc); err != nil {
				return nil, err
			}
			_, err = p.call(map[string]any{"cmd": "setup", "dir": dir, "transform": tf, "size": cfg.Size,
				"batch": cfg.Batch, "workers": cfg.Workers, "threads": rep.Threads, "seed": cfg.Seed})
			if err != nil {
				p.close()
				return nil, err
			}
			rep.Torch, rep.PeerMalloc = p.torch, cmp.Or(cfg.PeerMalloc, PeerMallocRobarch)
		}
		err = func() error {
			if p != nil {
				defer p.close()
			}
			for e := range cfg.Epochs {
				ep := FolderEpoch{Transform: tf, Epoch: e + 1}
				var pr peerReply
				runPeer := func() (err error) {
					if p != nil {
						pr, err = p.call(map[string]any{"cmd": "epoch"})
					}
					return err
				}
				if e%2 == 1 {
					if err := runPeer(); err != nil {
						return err
					}
				}
				if err := folderEpoch(ctx, l, e, &ep); err != nil {
					return fmt.Errorf("bench loader %s epoch %d: %w", tf, e+1, err)
				}
				if e%2 == 0 {
					if err := runPeer(); err != nil {
						return err
					}
				}
				if p != nil && pr.Seconds > 0 {
					ep.PeerImagesPerS = float64(pr.Images) / pr.Seconds
					ep.Ratio = ep.ImagesPerS / ep.PeerImagesPerS
					ep.PeerRSSBytes, ep.PeerWorkersRSSBytes = pr.RSS, pr.WorkersRSS
				}
				cfg.Logger.Info("bench loader", "transform", tf, "epoch", e+1, "images_per_s", round1(ep.ImagesPerS),
					"peer_images_per_s", round1(ep.PeerImagesPerS), "ratio", round2(ep.Ratio), "rss_mib", ep.RSSBytes>>20)
				rep.Epochs = append(rep.Epochs, ep)
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	var err error
	rep.PeakRSSBytes, err = PeakRSS()
	return rep, err
}

// folderEpoch runs one epoch of l as training would consume it: every
// batch becomes a normalised float tensor on the CPU and is dropped.
func folderEpoch(ctx context.Context, l *data.Loader, epoch int, ep *FolderEpoch) error {
	start := time.Now()
	for b, err := range l.Batches(ctx, epoch) {
		if err != nil {
			return err
		}
		x, y, err := torchbatch.Convert(b, gotch.CPU, torchbatch.ImageNet)
		if err != nil {
			return err
		}
		_ = x.Drop()
		_ = y.Drop()
		ep.Images += b.N
	}
	ep.Seconds = time.Since(start).Seconds()
	ep.ImagesPerS = float64(ep.Images) / ep.Seconds
	rss, err := RSS()
	ep.RSSBytes = rss
	return err
}

func decoderName(d data.Decoder) string {
	if d == data.DecoderAuto {
		return "auto"
	}
	return string(d)
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// FolderSummary is the median rate of each side over the epochs after
// the first (all epochs when there is one) per transform.
type FolderSummary struct {
	Transform      string  `json:"transform"`
	ImagesPerS     float64 `json:"images_per_s"`
	PeerImagesPerS float64 `json:"peer_images_per_s,omitempty"`
	Ratio          float64 `json:"ratio,omitempty"`
}

// Summary condenses the report's epochs.
func (r *FolderReport) Summary() []FolderSummary {
	var out []FolderSummary
	var order []string
	for _, e := range r.Epochs {
		if !slices.Contains(order, e.Transform) {
			order = append(order, e.Transform)
		}
	}
	for _, tf := range order {
		var mine, theirs []float64
		var all []FolderEpoch
		for _, e := range r.Epochs {
			if e.Transform == tf {
				all = append(all, e)
			}
		}
		if len(all) > 1 {
			all = all[1:]
		}
		for _, e := range all {
			mine = append(mine, e.ImagesPerS)
			if e.PeerImagesPerS > 0 {
				theirs = append(theirs, e.PeerImagesPerS)
			}
		}
		s := FolderSummary{Transform: tf, ImagesPerS: Summarize(mine).Median}
		if len(theirs) > 0 {
			s.PeerImagesPerS = Summarize(theirs).Median
			s.Ratio = s.ImagesPerS / s.PeerImagesPerS
		}
		out = append(out, s)
	}
	return out
}

package arch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForData(t *testing.T) {
	micro, err := Get("micro") // 1×28×28, 10 classes
	require.NoError(t, err)
	in := micro.WithDefaults().Input
	same := DataShape{Name: "fashion-mnist", Channels: in.Channels, Height: in.Height, Width: in.Width, Classes: micro.Classes}
	for _, tc := range []struct {
		name    string
		d       DataShape
		fit     bool
		adapted bool
		err     string
	}{
		{"same shape, planned", same, false, false, ""},
		{"same shape, fresh", same, true, false, ""},
		{"other channels, fresh", DataShape{Name: "cifar10", Channels: 3, Height: 28, Width: 28, Classes: 10}, true, false, "takes 1x28x28 inputs with 10 classes but cifar10 has 3x28x28 images with 10 classes: the channels cannot be fitted"},
		{"other size, planned", DataShape{Name: "big", Channels: 1, Height: 32, Width: 32, Classes: 10}, false, false, "takes 1x28x28 inputs with 10 classes but big has 1x32x32"},
		{"other classes, planned", DataShape{Name: "few", Channels: 1, Height: 28, Width: 28, Classes: 2}, false, false, "with 10 classes but few has 1x28x28 images with 2 classes"},
		{"other channels, planned", DataShape{Name: "cifar10", Channels: 3, Height: 28, Width: 28, Classes: 10}, false, false, "but cifar10 has 3x28x28 images"},
		{"other size and classes, fresh", DataShape{Name: "big", Channels: 1, Height: 32, Width: 32, Classes: 100}, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, adapted, err := ForData(micro, tc.d, tc.fit)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.adapted, adapted)
			gin := got.WithDefaults().Input
			assert.Equal(t, []int{tc.d.Channels, tc.d.Height, tc.d.Width, tc.d.Classes}, []int{gin.Channels, gin.Height, gin.Width, got.Classes})
			if !adapted {
				assert.Equal(t, micro, got, "an unadapted spec is returned as is")
			}
		})
	}
}

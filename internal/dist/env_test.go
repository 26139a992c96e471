package dist

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		ok      bool
		want    Env
		wantErr string
	}{
		{name: "single process", env: map[string]string{}},
		{name: "world of one", env: map[string]string{"WORLD_SIZE": "1", "RANK": "0"}},
		{name: "torchrun standalone", ok: true,
			env: map[string]string{"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
				"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29400", "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "2"},
			want: Env{Addr: "127.0.0.1", Port: 29400, Rank: 1, World: 2, LocalRank: 1, LocalWorld: 2,
				AgentStore: true, Prefix: "/worker/attempt_2", Launcher: "torchrun"}},
		{name: "pytorchjob defaults", ok: true,
			env:  map[string]string{"WORLD_SIZE": "4", "RANK": "3"},
			want: Env{Addr: "127.0.0.1", Port: DefaultPort, Rank: 3, World: 4, LocalWorld: 1, Launcher: "env"}},
		{name: "slurm", ok: true,
			env: map[string]string{"SLURM_NTASKS": "6", "SLURM_PROCID": "4", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "2(x3)",
				"MASTER_ADDR": "node1", "MASTER_PORT": "29501", "GLOO_SOCKET_IFNAME": "eth0"},
			want: Env{Addr: "node1", Port: 29501, Rank: 4, World: 6, LocalRank: 1, LocalWorld: 2, Interface: "eth0", Launcher: "slurm"}},
		{name: "slurm without a store is one process", env: map[string]string{"SLURM_NTASKS": "6", "SLURM_PROCID": "4"}},
		{name: "rank out of range", env: map[string]string{"WORLD_SIZE": "2", "RANK": "2"}, wantErr: "RANK=2: must be in [0, 2)"},
		{name: "rank missing", env: map[string]string{"WORLD_SIZE": "2"}, wantErr: "RANK is not set"},
		{name: "rank without world", env: map[string]string{"RANK": "1"}, wantErr: "RANK=1 without WORLD_SIZE"},
		{name: "world not a number", env: map[string]string{"WORLD_SIZE": "two"}, wantErr: `WORLD_SIZE="two": not an integer`},
		{name: "world zero", env: map[string]string{"WORLD_SIZE": "0"}, wantErr: "WORLD_SIZE=0: must be at least 1"},
		{name: "local rank beyond local world", env: map[string]string{"WORLD_SIZE": "4", "RANK": "1", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"},
			wantErr: "LOCAL_RANK=2: must be in [0, 2)"},
		{name: "local world beyond world", env: map[string]string{"WORLD_SIZE": "2", "RANK": "1", "LOCAL_WORLD_SIZE": "4"},
			wantErr: "LOCAL_WORLD_SIZE=4 exceeds WORLD_SIZE=2"},
		{name: "port out of range", env: map[string]string{"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "70000"},
			wantErr: "MASTER_PORT=70000: must be in [1, 65535]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestVariablesRoundTrip(t *testing.T) {
	e := Env{Addr: "127.0.0.1", Port: 4000, Rank: 1, World: 3, LocalRank: 1, LocalWorld: 3, Launcher: "env"}
	vars := map[string]string{}
	for _, kv := range e.Variables() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	got, ok, err := FromEnv(func(k string) string { return vars[k] })
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, e, got)
}

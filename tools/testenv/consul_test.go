package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// consulClient talks to an agent's HTTP API the way a discovery client does, with plain HTTP.
type consulClient struct {
	t    testing.TB
	base string
	http *http.Client
}

func newConsulClient(t testing.TB, a *ConsulAgent) *consulClient {
	// Blocking queries outlast the package client's timeout; this one has none.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &consulClient{t: t, base: a.URL, http: &http.Client{Transport: tr}}
}

// do sends a request and returns the status, the X-Consul-Index and the body.
func (c *consulClient) do(method, path, body string) (int, uint64, []byte, error) {
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, nil, err
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return resp.StatusCode, index, b, nil
}

// must is do that fails the test unless the answer is 200 OK.
func (c *consulClient) must(method, path, body string) (uint64, []byte) {
	c.t.Helper()
	status, index, b, err := c.do(method, path, body)
	require.NoError(c.t, err)
	require.Equal(c.t, http.StatusOK, status, "%s %s: %s", method, path, b)
	return index, b
}

// register registers service id with a TTL check through the agent.
func (c *consulClient) register(id, name string, port int) {
	c.t.Helper()
	c.must(http.MethodPut, "/v1/agent/service/register", `{
		"ID": "`+id+`", "Name": "`+name+`", "Address": "127.0.0.1", "Port": `+strconv.Itoa(port)+`,
		"Check": {"CheckID": "`+id+`-ttl", "TTL": "30s", "DeregisterCriticalServiceAfter": "10m"}
	}`)
}

// healthy returns the ids of the passing instances of name, and the index of the answer;
// with index > 0 it is a blocking query that waits up to wait for a change past index.
func (c *consulClient) healthy(name string, index uint64, wait time.Duration) ([]string, uint64) {
	c.t.Helper()
	path := "/v1/health/service/" + name + "?passing"
	if index > 0 {
		path += "&index=" + strconv.FormatUint(index, 10) + "&wait=" + wait.String()
	}
	newIndex, body := c.must(http.MethodGet, path, "")
	var entries []struct{ Service struct{ ID string } }
	require.NoError(c.t, json.Unmarshal(body, &entries))
	ids := []string{}
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	return ids, newIndex
}

func TestConsul(t *testing.T) {
	t.Parallel()

	t.Run("TTL check and blocking query", func(t *testing.T) {
		t.Parallel()
		agent := Consul(t)
		c := newConsulClient(t, agent)

		var leader string
		_, body := c.must(http.MethodGet, "/v1/status/leader", "")
		require.NoError(t, json.Unmarshal(body, &leader))
		require.Equal(t, agent.ServerAddr, leader)

		c.register("worker-1", "worker", 9001)
		ids, index := c.healthy("worker", 0, 0)
		require.Empty(t, ids, "a TTL check starts critical")
		require.NotZero(t, index)

		// Nothing changes: the blocking query waits its whole wait and returns the same index.
		start := time.Now()
		ids, again := c.healthy("worker", index, 300*time.Millisecond)
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
		require.Empty(t, ids)
		require.Equal(t, index, again)

		// The check passes: a blocking query waiting on the index returns with the instance,
		// long before its wait ends.
		type answer struct {
			ids   []string
			index uint64
		}
		got := make(chan answer, 1)
		go func() {
			ids, idx := c.healthy("worker", index, time.Minute)
			got <- answer{ids, idx}
		}()
		c.must(http.MethodPut, "/v1/agent/check/pass/worker-1-ttl", "")
		select {
		case a := <-got:
			require.Equal(t, []string{"worker-1"}, a.ids)
			require.Greater(t, a.index, index)
		case <-time.After(30 * time.Second):
			t.Fatal("the blocking query did not return after the check passed")
		}
	})

	t.Run("dev agent restarts empty on the same address", func(t *testing.T) {
		t.Parallel()
		agent := Consul(t)
		addr := agent.HTTPAddr
		c := newConsulClient(t, agent)
		c.register("worker-1", "worker", 9001)
		c.must(http.MethodPut, "/v1/kv/tock/leader", "a")

		agent.Stop()
		require.False(t, agent.Running())
		_, _, _, err := c.do(http.MethodGet, "/v1/status/leader", "")
		require.Error(t, err, "a stopped agent refuses connections")
		agent.Stop() // idempotent

		agent.Restart()
		require.True(t, agent.Running())
		require.Equal(t, addr, agent.HTTPAddr)
		_, body := c.must(http.MethodGet, "/v1/catalog/service/worker", "")
		require.JSONEq(t, `[]`, string(body))
		status, _, _, err := c.do(http.MethodGet, "/v1/kv/tock/leader", "")
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, status)
	})

	t.Run("persistent agent keeps its data across a restart and a crash", func(t *testing.T) {
		t.Parallel()
		agent := StartConsul(t, ConsulConfig{Persistent: true})
		c := newConsulClient(t, agent)
		c.register("worker-1", "worker", 9001)
		c.must(http.MethodPut, "/v1/agent/check/pass/worker-1-ttl", "")
		c.must(http.MethodPut, "/v1/kv/tock/leader", "a")

		agent.Restart()
		ids, _ := c.healthy("worker", 0, 0)
		require.Equal(t, []string{"worker-1"}, ids)
		_, value := c.must(http.MethodGet, "/v1/kv/tock/leader?raw", "")
		require.Equal(t, "a", string(value))

		agent.Kill()
		require.False(t, agent.Running())
		agent.Restart()
		_, body := c.must(http.MethodGet, "/v1/agent/services", "")
		require.Contains(t, string(body), `"worker-1"`)
		_, value = c.must(http.MethodGet, "/v1/kv/tock/leader?raw", "")
		require.Equal(t, "a", string(value))
	})

	t.Run("extra arguments", func(t *testing.T) {
		t.Parallel()
		agent := StartConsul(t, ConsulConfig{Args: []string{"-hcl", `node_meta { tock = "yes" }`}})
		c := newConsulClient(t, agent)
		_, body := c.must(http.MethodGet, "/v1/catalog/node/"+ConsulNodeName, "")
		var node struct {
			Node struct{ Meta map[string]string }
		}
		require.NoError(t, json.Unmarshal(body, &node))
		require.Equal(t, "yes", node.Node.Meta["tock"])
	})
}

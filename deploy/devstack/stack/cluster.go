package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClusterNodes is the number of masters of the Redis Cluster that
// Options.RedisCluster starts.
const ClusterNodes = 3

// totalSlots is Redis Cluster's hash slot count.
const totalSlots = 16384

// startRedisCluster starts ClusterNodes redis-server processes with
// cluster-enabled, each a master of an equal share of the 16384 slots and
// no replica, and sets RedisURL to their addresses as a comma list (what
// the issuer's redisstore.NewClient reads as a Cluster). The first node
// listens on opts.RedisPort when it is set. Each node's state starts empty:
// a dev stack keeps no Redis data, so an old nodes.conf is removed.
//
// The slots are assigned with CLUSTER ADDSLOTS and the nodes introduced with
// CLUSTER MEET, sent here: the same as `redis-cli --cluster create …
// --cluster-replicas 0`, without needing redis-cli.
func (s *Stack) startRedisCluster(ctx context.Context, opts Options, bin string) error {
	var addrs []string
	var buses []int
	for i := range ClusterNodes {
		port := 0
		if i == 0 {
			port = opts.RedisPort
		}
		addr, bus, err := s.startClusterNode(ctx, opts, bin, i, port)
		if err != nil {
			return err
		}
		addrs, buses = append(addrs, addr), append(buses, bus)
	}
	per := totalSlots / ClusterNodes
	for i, a := range addrs {
		lo, hi := i*per, (i+1)*per-1
		if i == len(addrs)-1 {
			hi = totalSlots - 1
		}
		args := []string{"CLUSTER", "ADDSLOTS"}
		for slot := lo; slot <= hi; slot++ {
			args = append(args, strconv.Itoa(slot))
		}
		if _, err := redisCommand(a, args...); err != nil {
			return fmt.Errorf("cluster node %s: %w", a, err)
		}
	}
	for i, a := range addrs[1:] {
		host, port, _ := net.SplitHostPort(a)
		if _, err := redisCommand(addrs[0], "CLUSTER", "MEET", host, port, strconv.Itoa(buses[i+1])); err != nil {
			return fmt.Errorf("cluster meet %s: %w", a, err)
		}
	}
	if err := waitClusterOK(ctx, addrs); err != nil {
		return err
	}
	s.RedisKind = "redis-cluster"
	s.RedisURL = strings.Join(addrs, ",")
	opts.Logger.Info(fmt.Sprintf("redis: a Redis Cluster of %d masters (redis-server from PATH)", ClusterNodes),
		"addrs", s.RedisURL, "bin", bin)
	return nil
}

// startClusterNode starts node i of the cluster on port (0: a free one),
// its cluster bus on a free port of its own, and answers its address once
// it answers PING, with its bus port.
func (s *Stack) startClusterNode(ctx context.Context, opts Options, bin string, i, port int) (string, int, error) {
	var err error
	if port == 0 {
		if port, err = freePort(); err != nil {
			return "", 0, err
		}
	}
	bus, err := freePort()
	if err != nil {
		return "", 0, err
	}
	dir := filepath.Join(opts.DataDir, "redis-cluster", strconv.Itoa(i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, err
	}
	conf := filepath.Join(dir, "nodes.conf")
	if err := os.Remove(conf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", 0, err
	}
	addr := hostPort(port)
	p, err := startChild(exec.Command(bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--cluster-enabled", "yes", "--cluster-config-file", conf, "--cluster-port", strconv.Itoa(bus),
		"--cluster-node-timeout", "5000",
		"--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning",
	))
	if err != nil {
		return "", 0, err
	}
	s.onClose(p.stop)
	if err := waitTCP(ctx, addr, redisPing, p.exited); err != nil {
		return "", 0, err
	}
	opts.Logger.Info("redis: cluster node", "addr", addr, "bus", bus, "pid", p.cmd.Process.Pid)
	return addr, bus, nil
}

// waitClusterOK waits until every node reports cluster_state:ok and knows
// every other node.
func waitClusterOK(ctx context.Context, addrs []string) error {
	want := "cluster_known_nodes:" + strconv.Itoa(len(addrs))
	var last string
	for {
		ok := true
		for _, a := range addrs {
			info, err := redisCommand(a, "CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, want) {
				ok, last = false, fmt.Sprintf("%s: %v %q", a, err, info)
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Redis Cluster did not form: %s: %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// redisCommand sends one command to the Redis at addr and answers a simple
// string, an integer or a bulk string reply; an error reply is an error.
func redisCommand(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case line == "":
		return "", errors.New("empty reply")
	case line[0] == '+' || line[0] == ':':
		return line[1:], nil
	case line[0] == '-':
		return "", errors.New(line[1:])
	case line[0] == '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

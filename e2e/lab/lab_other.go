//go:build !linux

package lab

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"time"

	"k8s.io/client-go/kubernetes"
)

const netnsDir = "/run/netns"

var errNotSupported = errors.New("the lab needs Linux")

// Up needs Linux; elsewhere it returns an error.
func Up(context.Context, Options) (*Cluster, error) { return nil, errNotSupported }

// Close needs Linux; elsewhere it returns an error.
func (c *Cluster) Close() error { return errNotSupported }

// Down needs Linux; elsewhere it returns an error.
func Down(context.Context, string, string, *slog.Logger) error { return errNotSupported }

// SupervisorLog is where a detached supervisor's own log goes.
func SupervisorLog(root, name string) string { return StateDir(root, name) + ".log" }

// LaunchOptions configure Launch.
type LaunchOptions struct {
	Name, Root, Self, Echo string
	Nodes                  int
	Timeout                time.Duration
}

// Launch needs Linux; elsewhere it returns an error.
func Launch(context.Context, LaunchOptions) (State, error) { return State{}, errNotSupported }

// Serve needs Linux; elsewhere it returns an error.
func Serve(context.Context, Options) error { return errNotSupported }

// PodNetns needs Linux; elsewhere it returns an error.
func PodNetns(context.Context, kubernetes.Interface, string, string, string) (string, error) {
	return "", errNotSupported
}

// ExecIn needs Linux; elsewhere it returns an error.
func ExecIn(context.Context, string, []string, []string, io.Reader, io.Writer, io.Writer) error {
	return errNotSupported
}

// Running needs Linux; elsewhere it reports false.
func Running(State) bool { return false }

func startInNetns(string, *exec.Cmd) error { return errNotSupported }

// ResidentBytes needs Linux; elsewhere it returns an error.
func ResidentBytes(string, string) (uint64, int, error) { return 0, 0, errNotSupported }

// SweepDead needs Linux; elsewhere it returns an error.
func SweepDead(context.Context, string, *slog.Logger) error { return errNotSupported }

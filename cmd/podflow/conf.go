package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
)

// confFlags are --conf and --conf-file, shared by the commands that take a
// run's conf (trigger, test, dry-run).
type confFlags struct {
	inline string
	file   string
}

func (f *confFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.inline, "conf", "", "dag_run.conf as a JSON object")
	cmd.Flags().StringVar(&f.file, "conf-file", "", "read dag_run.conf (a JSON object) from a file, or from stdin with -")
}

// load returns the conf's JSON and its decoded object, checked against the
// size and nesting limits (dag.ParseConf); nil JSON when none was given.
func (f *confFlags) load(stdin io.Reader) ([]byte, map[string]any, error) {
	var raw []byte
	switch {
	case f.inline != "" && f.file != "":
		return nil, nil, errors.New("give --conf or --conf-file, not both")
	case f.inline != "":
		raw = []byte(f.inline)
	case f.file == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, dag.MaxConfBytes+1))
		if err != nil {
			return nil, nil, fmt.Errorf("--conf-file -: read stdin: %w", err)
		}
		raw = b
	case f.file != "":
		b, err := readConfFile(f.file)
		if err != nil {
			return nil, nil, fmt.Errorf("--conf-file: %w", err)
		}
		raw = b
	default:
		return nil, map[string]any{}, nil
	}
	conf, err := dag.ParseConf(raw)
	if err != nil {
		flag := "--conf"
		if f.file != "" {
			flag = "--conf-file " + f.file
		}
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return raw, conf, nil
}

// readConfFile reads at most one byte over the conf limit, so a huge file
// is refused without being read whole.
func readConfFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, dag.MaxConfBytes+1))
}

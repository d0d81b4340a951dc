package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of the listing commands (Airflow's --output).
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// listing is what a listing command prints: a table for people, and the
// records themselves (with their JSON field names) for -o json|yaml.
type listing struct {
	header  []string
	rows    [][]string
	records any // a slice; printed as [] when empty
}

func (l *listing) add(cells ...string) { l.rows = append(l.rows, cells) }

// addOutputFlag gives a listing command -o/--output.
func addOutputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", outputTable, "output format: table, json or yaml")
}

// checkOutput refuses an unknown format before the command does any work.
func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return &exitError{code: 2, msg: fmt.Sprintf("--output %q: want table, json or yaml", format)}
}

// print writes l in format.
func (l *listing) print(w io.Writer, format string) error {
	switch format {
	case outputJSON, outputYAML:
		b, err := json.MarshalIndent(l.records, "", "  ")
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		if string(b) == "null" {
			b = []byte("[]")
		}
		if format == outputYAML {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return fmt.Errorf("encode output: %w", err)
			}
			_, err = w.Write(b)
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case outputTable, "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(l.header, "\t"))
		for _, r := range l.rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
	return checkOutput(format)
}

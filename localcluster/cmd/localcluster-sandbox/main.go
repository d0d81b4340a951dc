// Command localcluster-sandbox is the small helper localcluster starts for every pod (the "pause" process)
// and every container run (the container init). It is a separate binary so that these short-lived and
// numerous processes do not pay for the Kubernetes packages' start-up in the big localcluster binary.
package main

import (
	"fmt"
	"os"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "localcluster-sandbox is started by localcluster; it is not meant to be run by hand")
		os.Exit(2)
	}
	switch os.Args[1] {
	case sandbox.PauseCommand:
		os.Exit(sandbox.RunPause())
	case sandbox.ContainerInitCommand:
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "localcluster: container init needs a spec file")
			os.Exit(128)
		}
		os.Exit(sandbox.RunContainerInit(os.Args[2]))
	case sandbox.ExecCommand:
		os.Exit(sandbox.RunExec(os.Args[2:]))
	}
	fmt.Fprintf(os.Stderr, "localcluster-sandbox: unknown command %q\n", os.Args[1])
	os.Exit(2)
}

// Command localcluster runs a real Kubernetes cluster in one process for tests and the local demo:
// embedded etcd, kube-apiserver, kube-scheduler, kube-controller-manager and one node whose pods run as
// host processes (images are ignored). See the README in this module.
package main

import (
	"fmt"
	"os"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

const usage = `usage: localcluster up --dir DIR [--node-name NAME] [--node-label KEY=VALUE ...] [--exit-with-parent] [--host-rootfs]

Starts a single-node Kubernetes cluster (v1.37.2) in this process. It writes DIR/kubeconfig (admin), prints
"localcluster ready kubeconfig=DIR/kubeconfig" on stdout when pods can be created, and runs until SIGINT
or SIGTERM, then stops everything. Pods run their containers' commands as root host processes.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "up":
		os.Exit(runUp(os.Args[2:]))
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
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "localcluster: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

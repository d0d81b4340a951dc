// Command scheduler is podflow's scheduler daemon: it syncs the DAGs folder,
// creates DAG runs, and runs task instances on its workers. Run as many as
// you like against one database.
package main

import "github.com/podflow/podflow/internal/daemon"

func main() {
	daemon.Main(daemon.Command("scheduler", "podflow scheduler: DAG runs and workers", true, false))
}

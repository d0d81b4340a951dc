// Command triggerer is podflow's triggerer daemon: it watches deferred
// tasks' triggers (pods, times) and resumes the tasks when they fire. Run as
// many as you like against one database.
package main

import "github.com/podflow/podflow/internal/daemon"

func main() {
	daemon.Main(daemon.Command("triggerer", "podflow triggerer: runs deferred tasks' triggers", false, true))
}

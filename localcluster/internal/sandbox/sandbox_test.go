package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The test binary doubles as the helper: started with a hidden command, it runs it instead of the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case PauseCommand:
			os.Exit(RunPause())
		case ContainerInitCommand:
			os.Exit(RunContainerInit(os.Args[2]))
		}
	}
	os.Exit(m.Run())
}

func startTestPause(t *testing.T) *Pause {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartPause(self, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// runInPod runs spec the way the node runs a container and returns its output and exit code.
func runInPod(t *testing.T, p *Pause, spec ContainerSpec) (string, int) {
	t.Helper()
	self, _ := os.Executable()
	specPath := filepath.Join(t.TempDir(), "spec.json")
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(p.PID()), "--pid", "--mount", "--",
		"unshare", "--mount", "--propagation", "private", "--", self, ContainerInitCommand, specPath)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "GREETING=hello"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func TestContainerSeesOnlyItsPodAndItsOwnMounts(t *testing.T) {
	p := startTestPause(t)
	vol := t.TempDir()
	target := filepath.Join(t.TempDir(), "not-there", "xcom")
	out, code := runInPod(t, p, ContainerSpec{
		Argv:   []string{"sh", "-c", "echo $GREETING; echo 42 > " + target + "/return.json; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'"},
		Mounts: []Mount{{Source: vol, Target: target}},
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "hello" || !strings.Contains(lines[1], PauseCommand) {
		t.Fatalf("output %q: want env, PID 1 = pause", out)
	}
	if n, _ := strconv.Atoi(lines[2]); n > 5 {
		t.Errorf("container sees %d processes: want only its pod's", n)
	}
	if data, err := os.ReadFile(filepath.Join(vol, "return.json")); err != nil || string(data) != "42\n" {
		t.Errorf("volume content %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(target, "return.json")); err == nil {
		t.Errorf("the file is visible on the host at the mount path")
	}
}

func TestCommandNotFoundExits127(t *testing.T) {
	p := startTestPause(t)
	out, code := runInPod(t, p, ContainerSpec{Argv: []string{"no-such-command-xyz"}})
	if code != 127 || !strings.Contains(out, "command not found") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestKillingPauseKillsThePod(t *testing.T) {
	p := startTestPause(t)
	self, _ := os.Executable()
	specPath := filepath.Join(t.TempDir(), "spec.json")
	data, _ := json.Marshal(ContainerSpec{Argv: []string{"sh", "-c", "echo started; exec sleep 1000"}})
	_ = os.WriteFile(specPath, data, 0o600)
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(p.PID()), "--pid", "--mount", "--",
		"unshare", "--mount", "--propagation", "private", "--", self, ContainerInitCommand, specPath)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	p.Kill()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Errorf("container after pause was killed: %v", err)
	}
}

func TestPrivateRootKeepsWritesOffTheHost(t *testing.T) {
	p := startTestPause(t)
	vol := t.TempDir()
	hostPath := filepath.Join(os.TempDir(), "localcluster-private-root-"+strconv.Itoa(os.Getpid()))
	out, code := runInPod(t, p, ContainerSpec{
		Argv: []string{"sh", "-c", "echo private > " + hostPath + "; cat " + hostPath + "; echo shared > /data/f; " +
			"mkdir -p /airflow/xcom && echo x > /airflow/xcom/return.json; ls /proc | grep -c '^[0-9]'"},
		Mounts:      []Mount{{Source: vol, Target: "/data"}},
		RootScratch: filepath.Join(t.TempDir(), "root"),
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "private" {
		t.Errorf("the container cannot read its own write: %q", out)
	}
	if n, _ := strconv.Atoi(lines[len(lines)-1]); n > 5 {
		t.Errorf("container sees %d processes: want only its pod's", n)
	}
	if _, err := os.Stat(hostPath); !os.IsNotExist(err) {
		os.Remove(hostPath)
		t.Errorf("a write outside the volumes reached the host: %v", err)
	}
	if _, err := os.Stat("/airflow"); err == nil {
		t.Errorf("/airflow appeared on the host")
	}
	if data, err := os.ReadFile(filepath.Join(vol, "f")); err != nil || string(data) != "shared\n" {
		t.Errorf("volume write: %q %v", data, err)
	}
}

func TestResolveInRootFollowsLinksInsideRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(root, "var"), 0o755)
	_ = os.Symlink("/run", filepath.Join(root, "var", "run"))
	_ = os.Symlink("../run", filepath.Join(root, "var", "rel"))
	for in, want := range map[string]string{
		"/var/run/secrets/x": filepath.Join(root, "run/secrets/x"),
		"/var/rel/a":         filepath.Join(root, "run/a"),
		"/../../etc":         filepath.Join(root, "etc"),
	} {
		got, err := resolveInRoot(root, in)
		if err != nil || got != want {
			t.Errorf("resolveInRoot(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

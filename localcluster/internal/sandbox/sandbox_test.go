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
		case ExecCommand:
			os.Exit(RunExec(os.Args[2:]))
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

// dockerDefaultCaps is Docker's default capability set as /proc/self/status prints it.
const dockerDefaultCaps = "00000000a80425fb"

func TestKeptCapabilitiesAreDockersDefault(t *testing.T) {
	if got := strconv.FormatUint(keptMask(), 16); "00000000"+got != dockerDefaultCaps {
		t.Errorf("kept capabilities %s, want %s", got, dockerDefaultCaps)
	}
}

// statusCaps returns the Cap* lines of a `grep ^Cap /proc/self/status` output.
func statusCaps(out string) map[string]string {
	caps := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(k, "Cap") {
			caps[k] = strings.TrimSpace(v)
		}
	}
	return caps
}

func TestContainerHasDockersDefaultCapabilitiesAndReadOnlyKernelPaths(t *testing.T) {
	p := startTestPause(t)
	for _, private := range []bool{true, false} {
		spec := ContainerSpec{Argv: []string{"sh", "-c", "grep ^Cap /proc/self/status; " +
			"h=$(cat /proc/sys/kernel/hostname); echo \"$h\" > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-writable; " +
			"echo 1 > /sys/kernel/profiling 2>/dev/null && echo sys-writable; " +
			"mount -t tmpfs t /mnt 2>/dev/null && echo mount-allowed; " +
			"ls /proc/1/root/ >/dev/null 2>&1 && echo pause-root-readable; " +
			"find /dev -type b | grep -q . && echo block-devices; " +
			"echo done"}}
		if private {
			spec.RootScratch = filepath.Join(t.TempDir(), "root")
		}
		out, code := runInPod(t, p, spec)
		if code != 0 || !strings.HasSuffix(out, "done\n") {
			t.Fatalf("private root %v: exit %d: %s", private, code, out)
		}
		caps := statusCaps(out)
		for _, set := range []string{"CapEff", "CapPrm", "CapBnd"} {
			if caps[set] != dockerDefaultCaps {
				t.Errorf("private root %v: %s = %s, want %s", private, set, caps[set], dockerDefaultCaps)
			}
		}
		for _, set := range []string{"CapInh", "CapAmb"} {
			if caps[set] != "0000000000000000" {
				t.Errorf("private root %v: %s = %s, want none", private, set, caps[set])
			}
		}
		for _, bad := range []string{"proc-sys-writable", "sys-writable", "mount-allowed", "pause-root-readable", "block-devices"} {
			if strings.Contains(out, bad) && (private || bad != "block-devices") {
				t.Errorf("private root %v: %s:\n%s", private, bad, out)
			}
		}
	}
}

// The classic chroot escape (chroot into a subdirectory, walk `..` from outside it, chroot there) reached the
// host's root when the container root was a chroot. With pivot_root it ends inside the container.
func TestChrootEscapeDoesNotReachTheHost(t *testing.T) {
	p := startTestPause(t)
	hidden := t.TempDir()
	marker := filepath.Join(hidden, "host-only-marker")
	if err := os.WriteFile(marker, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	escapeFile := "/localcluster-escape-" + strconv.Itoa(os.Getpid())
	defer os.Remove(escapeFile)
	script := `mkdir "x"; chroot "x" or die "chroot x: $!"; chdir ".." for 1..64; chroot "." or die "chroot .: $!";` +
		`print((-e "` + marker + `") ? "marker-visible\n" : "marker-hidden\n");` +
		`print((-e "/etc/passwd") ? "host-files-visible\n" : "host-files-hidden\n");` +
		`if (open(my $f, ">", "` + escapeFile + `")) { print $f "escaped\n"; close($f); print "written\n" } else { print "write: $!\n" }` +
		`opendir(my $d, "/"); print join(" ", sort readdir($d)), "\n";`
	out, code := runInPod(t, p, ContainerSpec{
		Argv:        []string{"perl", "-e", script},
		RootScratch: filepath.Join(t.TempDir(), "root"),
		MaskPaths:   []string{hidden},
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	t.Logf("escape attempt: %s", out)
	if !strings.Contains(out, "marker-hidden") {
		t.Errorf("after the escape, the host-only marker is visible: %s", out)
	}
	if _, err := os.Stat(escapeFile); err == nil {
		t.Errorf("after the escape, the container wrote %s on the host", escapeFile)
	}
	// Without the escape the masked directory is empty too.
	out, _ = runInPod(t, p, ContainerSpec{
		Argv:        []string{"sh", "-c", "ls -A " + hidden + "; echo listed"},
		RootScratch: filepath.Join(t.TempDir(), "root"),
		MaskPaths:   []string{hidden},
	})
	if out != "listed\n" {
		t.Errorf("masked directory inside the container: %q", out)
	}
}

func TestExecHelperDropsCapabilitiesAndSwitchesUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for capabilities")
	}
	self, _ := os.Executable()
	out, err := exec.Command(self, ExecCommand, "1000", "1000", "--", "sh", "-c", "id -u; grep ^CapBnd /proc/self/status").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := "1000\nCapBnd:\t" + dockerDefaultCaps + "\n"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	out, err = exec.Command(self, ExecCommand, "-", "-", "--", "sh", "-c", "grep ^CapEff /proc/self/status").CombinedOutput()
	if err != nil || string(out) != "CapEff:\t"+dockerDefaultCaps+"\n" {
		t.Errorf("as root: %q, %v", out, err)
	}
	if out, err := exec.Command(self, ExecCommand, "x", "-", "--", "true").CombinedOutput(); err == nil {
		t.Errorf("a bad uid was accepted: %s", out)
	}
}

func TestPrivateDevHasOnlyTheUsualDevices(t *testing.T) {
	p := startTestPause(t)
	out, code := runInPod(t, p, ContainerSpec{
		Argv: []string{"sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && " +
			"head -c 4 /dev/urandom | wc -c && echo shm > /dev/shm/f && cat /dev/shm/f && ls /dev/fd/ >/dev/null && " +
			"echo msg > /dev/termination-log && ls /dev | tr '\\n' ' '"},
		RootScratch: filepath.Join(t.TempDir(), "root"),
		Mounts:      []Mount{{Source: writeTemp(t, ""), Target: "/dev/termination-log"}},
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	want := "4\n4\nshm\nfd full null ptmx pts random shm stderr stdin stdout termination-log tty urandom zero "
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if _, err := os.Stat("/dev/shm/f"); err == nil {
		t.Errorf("the container's /dev/shm is the host's")
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

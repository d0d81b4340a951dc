package deploy_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image         string            `yaml:"image"`
	Build         any               `yaml:"build"`
	Command       []string          `yaml:"command"`
	Profiles      []string          `yaml:"profiles"`
	ContainerName string            `yaml:"container_name"`
	Restart       string            `yaml:"restart"`
	Environment   map[string]string `yaml:"environment"`
	Volumes       []string          `yaml:"volumes"`
	Ports         []any             `yaml:"ports"`
	Healthcheck   *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readRepoFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// mount is one short-syntax volume entry: source:target[:mode].
type mount struct{ source, target, mode string }

func parseMount(s string) mount {
	parts := strings.Split(withDefaults(s), ":")
	m := mount{source: parts[0]}
	if len(parts) > 1 {
		m.target = parts[1]
	}
	if len(parts) > 2 {
		m.mode = parts[2]
	}
	return m
}

// withDefaults resolves ${VAR:-default} to its default, as compose
// does with VAR unset.
var interpolation = regexp.MustCompile(`\$\{[A-Z0-9_]+:-([^}]*)\}`)

func withDefaults(s string) string { return interpolation.ReplaceAllString(s, "$1") }

func isNamedVolume(source string) bool {
	return source != "" && !strings.ContainsAny(source, "/.~$")
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"postgres", "migrate", "scheduler", "triggerer", "webserver", "k3s"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	// A plain `docker compose up` starts only the stack; the cluster is opt-in.
	core := []string{"postgres", "migrate", "scheduler", "triggerer", "webserver"}
	for name, s := range c.Services {
		if s.ContainerName != "" {
			t.Errorf("service %s has container_name %q: replicas (--scale) need generated names", name, s.ContainerName)
		}
		if slices.Contains(core, name) {
			if len(s.Profiles) != 0 {
				t.Errorf("service %s has profiles %v: it must start with a plain `docker compose up`", name, s.Profiles)
			}
		} else if !slices.Equal(s.Profiles, []string{"cluster"}) {
			t.Errorf("service %s: profiles = %v, want [cluster]", name, s.Profiles)
		}
	}
}

func TestComposePostgres(t *testing.T) {
	c := loadCompose(t)
	pg := c.Services["postgres"]
	if !strings.HasPrefix(withDefaults(pg.Image), "postgres:") { // ${POSTGRES_IMAGE:-postgres:16}: a stand-in in the compose test
		t.Errorf("postgres image = %q, want the official postgres image", pg.Image)
	}
	if pg.Healthcheck == nil || !strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "pg_isready") {
		t.Errorf("postgres needs a pg_isready healthcheck, got %+v", pg.Healthcheck)
	}
	found := false
	for _, v := range pg.Volumes {
		m := parseMount(v)
		if m.target == "/var/lib/postgresql/data" {
			found = true
			if !isNamedVolume(m.source) {
				t.Errorf("postgres data %q: want a named volume", v)
			}
			if _, ok := c.Volumes[m.source]; !ok {
				t.Errorf("postgres volume %q is not declared under volumes:", m.source)
			}
		}
	}
	if !found {
		t.Errorf("postgres has no volume at /var/lib/postgresql/data: %v", pg.Volumes)
	}
	for _, k := range []string{"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} {
		if pg.Environment[k] == "" {
			t.Errorf("postgres: %s is not set", k)
		}
	}
}

func TestComposeMigrate(t *testing.T) {
	c := loadCompose(t)
	m := c.Services["migrate"]
	if got := m.DependsOn["postgres"].Condition; got != "service_healthy" {
		t.Errorf("migrate depends_on postgres condition = %q, want service_healthy", got)
	}
	if !slices.Equal(m.Command, []string{"podflow", "db", "migrate"}) {
		t.Errorf("migrate command = %v, want [podflow db migrate]", m.Command)
	}
	if m.Image == "" || m.Image != c.Services["scheduler"].Image {
		t.Errorf("migrate image %q must be the daemons' image %q", m.Image, c.Services["scheduler"].Image)
	}
	if !strings.Contains(m.Environment["DATABASE_URL"], "@postgres:5432/") {
		t.Errorf("migrate DATABASE_URL = %q, want the postgres service", m.Environment["DATABASE_URL"])
	}
	if m.Restart != "" && m.Restart != "no" {
		t.Errorf("migrate restart = %q: a one-shot job must not restart", m.Restart)
	}
}

func TestComposeDaemons(t *testing.T) {
	c := loadCompose(t)
	root := repoRoot(t)
	for _, name := range []string{"scheduler", "triggerer"} {
		t.Run(name, func(t *testing.T) {
			s := c.Services[name]
			if s.Build == nil {
				t.Error("no build: the daemons are built from ./Dockerfile")
			}
			if len(s.Command) == 0 || s.Command[0] != name {
				t.Errorf("command = %v, want [%s ...]", s.Command, name)
			}
			if got := s.DependsOn["migrate"].Condition; got != "service_completed_successfully" {
				t.Errorf("depends_on migrate condition = %q, want service_completed_successfully", got)
			}
			if s.Restart != "unless-stopped" && s.Restart != "always" {
				t.Errorf("restart = %q, want unless-stopped", s.Restart)
			}
			if !strings.Contains(s.Environment["DATABASE_URL"], "@postgres:5432/") {
				t.Errorf("DATABASE_URL = %q, want the postgres service", s.Environment["DATABASE_URL"])
			}
			if len(s.Ports) != 0 {
				t.Errorf("ports %v: published ports collide when scaled (--scale %s=2)", s.Ports, name)
			}

			// The health endpoint the daemon serves is the one checked.
			addr := s.Environment["PODFLOW_HEALTH_ADDR"]
			if addr == "" {
				t.Fatal("PODFLOW_HEALTH_ADDR is not set: the daemon would serve no /healthz")
			}
			if s.Healthcheck == nil {
				t.Fatal("no healthcheck")
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("PODFLOW_HEALTH_ADDR %q: %v", addr, err)
			}
			test := strings.Join(s.Healthcheck.Test, " ")
			if !strings.Contains(test, "localhost:"+port+"/healthz") {
				t.Errorf("healthcheck %q does not hit localhost:%s/healthz", test, port)
			}

			// DAGs: ./examples/dags, read-only, where PODFLOW_DAGS_FOLDER says.
			dagsFolder := s.Environment["PODFLOW_DAGS_FOLDER"]
			var dags, kube *mount
			for _, v := range s.Volumes {
				m := parseMount(v)
				switch {
				case m.source == "./examples/dags":
					dags = &m
				case s.Environment["KUBECONFIG"] != "" && strings.HasPrefix(s.Environment["KUBECONFIG"], m.target+"/"):
					kube = &m
				}
			}
			if dags == nil {
				t.Fatalf("./examples/dags is not mounted: %v", s.Volumes)
			}
			if dags.target != dagsFolder || dags.mode != "ro" {
				t.Errorf("DAGs mount %+v: want ./examples/dags:%s:ro (PODFLOW_DAGS_FOLDER)", *dags, dagsFolder)
			}
			if st, err := os.Stat(filepath.Join(root, "examples", "dags")); err != nil || !st.IsDir() {
				t.Errorf("examples/dags is not a folder: %v", err)
			}

			// The kubeconfig: a read-only mount holding KUBECONFIG.
			if kube == nil {
				t.Fatalf("no volume holds KUBECONFIG=%q: %v", s.Environment["KUBECONFIG"], s.Volumes)
			}
			if kube.mode != "ro" {
				t.Errorf("kubeconfig mount %+v is not read-only", *kube)
			}
			if src := kube.source; isNamedVolume(src) {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("kubeconfig volume %q is not declared under volumes:", src)
				}
			}
		})
	}
}

// The webserver serves the API on the published port, with logins on.
func TestComposeWebserver(t *testing.T) {
	c := loadCompose(t)
	s := c.Services["webserver"]
	if s.Build == nil {
		t.Error("no build: the webserver is the podflow image")
	}
	addr := ""
	for i, a := range s.Command {
		if a == "--addr" && i+1 < len(s.Command) {
			addr = s.Command[i+1]
		}
	}
	if len(s.Command) < 2 || s.Command[0] != "podflow" || s.Command[1] != "webserver" || addr == "" {
		t.Fatalf("command = %v, want [podflow webserver --addr HOST:PORT]", s.Command)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "0.0.0.0" {
		t.Errorf("--addr %q: the port is published from the container, so it must listen on 0.0.0.0", addr)
	}
	if got := s.Environment["PODFLOW_AUTH"]; got != "builtin" {
		t.Errorf("PODFLOW_AUTH = %q: a published API needs logins (builtin)", got)
	}
	if !strings.Contains(s.Environment["DATABASE_URL"], "@postgres:5432/") {
		t.Errorf("DATABASE_URL = %q, want the postgres service", s.Environment["DATABASE_URL"])
	}
	if got := s.DependsOn["migrate"].Condition; got != "service_completed_successfully" {
		t.Errorf("depends_on migrate condition = %q, want service_completed_successfully", got)
	}
	published := false
	for _, p := range s.Ports {
		ps, _ := p.(string)
		parts := strings.Split(withDefaults(ps), ":")
		if len(parts) == 3 && parts[0] == "127.0.0.1" && parts[2] == port {
			published = true
		}
	}
	if !published {
		t.Errorf("ports %v: want 127.0.0.1:HOSTPORT:%s", s.Ports, port)
	}
	if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), "localhost:"+port+"/healthz") {
		t.Errorf("healthcheck %+v does not hit localhost:%s/healthz", s.Healthcheck, port)
	}
}

// The cluster profile hands k3s's kubeconfig to the daemons' kubeconfig volume.
func TestComposeClusterProfile(t *testing.T) {
	c := loadCompose(t)
	k3s := c.Services["k3s"]
	if !strings.HasPrefix(k3s.Image, "rancher/k3s:") {
		t.Errorf("k3s image = %q", k3s.Image)
	}
	if k3s.Healthcheck == nil {
		t.Error("k3s has no healthcheck: the kubeconfig copy waits for it")
	}
	if !slices.Contains(k3s.Command, "--tls-san=k3s") {
		t.Errorf("k3s command %v: the daemons reach it as https://k3s:6443, so its certificate needs --tls-san=k3s", k3s.Command)
	}
	copier, ok := c.Services["k3s-kubeconfig"]
	if !ok {
		t.Fatal("service k3s-kubeconfig is missing")
	}
	if got := copier.DependsOn["k3s"].Condition; got != "service_healthy" {
		t.Errorf("k3s-kubeconfig depends_on k3s condition = %q, want service_healthy", got)
	}
	script := strings.Join(copier.Command, " ")
	kubeconfig := c.Services["scheduler"].Environment["KUBECONFIG"]
	if !strings.Contains(script, "https://k3s:6443") || !strings.Contains(script, kubeconfig) {
		t.Errorf("k3s-kubeconfig %q must write %s with the server https://k3s:6443", script, kubeconfig)
	}
	// The copy goes to the volume the daemons mount by default.
	var daemonVolume string
	for _, v := range c.Services["scheduler"].Volumes {
		if m := parseMount(v); strings.HasPrefix(kubeconfig, m.target+"/") {
			daemonVolume = m.source
		}
	}
	shared := false
	for _, v := range copier.Volumes {
		m := parseMount(v)
		if m.source == daemonVolume && strings.HasPrefix(kubeconfig, m.target+"/") && m.mode != "ro" {
			shared = true
		}
	}
	if !shared {
		t.Errorf("k3s-kubeconfig does not write the daemons' kubeconfig volume %q: %v", daemonVolume, copier.Volumes)
	}
}

// The image has what the compose file runs in it.
func TestDockerfileMatchesCompose(t *testing.T) {
	c := loadCompose(t)
	dockerfile := string(readRepoFile(t, "Dockerfile"))
	for _, tool := range []string{"bash", "curl", "tini", "ca-certificates"} {
		if !regexp.MustCompile(`apt-get install[^\n]*(\\\n[^\n]*)*\b` + regexp.QuoteMeta(tool) + `\b`).MatchString(dockerfile) {
			t.Errorf("Dockerfile does not install %s", tool)
		}
	}
	if hc := c.Services["scheduler"].Healthcheck; hc != nil && len(hc.Test) > 1 && hc.Test[0] == "CMD" &&
		!strings.Contains(dockerfile, " "+hc.Test[1]+" ") {
		t.Errorf("the healthcheck runs %s, which the Dockerfile does not install", hc.Test[1])
	}
	for _, want := range []string{"./cmd/podflow", "./cmd/scheduler", "./cmd/triggerer", "CGO_ENABLED=0", "-trimpath",
		"USER 10001", `ENTRYPOINT ["/usr/bin/tini", "--"]`, `CMD ["scheduler"]`} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	ignore := strings.Fields(string(readRepoFile(t, ".dockerignore")))
	for _, want := range []string{"localcluster/", "bin/", ".git", ".localcluster/", ".demo/"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// composeCommand is docker-compose (Debian's package checks a file without a
// Docker engine), else the `docker compose` plugin.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if p, err := exec.LookPath("docker"); err == nil && exec.Command(p, "compose", "version").Run() == nil {
		return []string{p, "compose"}
	}
	t.Fatal("docker-compose is not installed: install Debian's package (apt-get install -y docker-compose) to check docker-compose.yml")
	return nil
}

func TestComposeConfigValid(t *testing.T) {
	compose := composeCommand(t)
	root := repoRoot(t)
	for _, args := range [][]string{
		{"-f", "docker-compose.yml", "config", "-q"},
		{"-f", "docker-compose.yml", "--profile", "cluster", "config", "-q"},
	} {
		cmd := exec.Command(compose[0], append(compose[1:], args...)...)
		cmd.Dir = root
		// The file's defaults are what is checked, not the caller's overrides.
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, "PODFLOW_") || strings.HasPrefix(kv, "K3S_") || strings.HasPrefix(kv, "COMPOSE_")
		})
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", strings.Join(compose, " "), strings.Join(args, " "), err, out)
		}
	}
}

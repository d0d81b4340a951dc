package templating

import (
	"errors"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// shellQuote is Python's shlex.quote: a string safe to paste into a POSIX
// shell command as one word. DAG authors should pass dag_run.conf and
// params through it in bash_command, since whoever triggers a run chooses
// the conf.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, unsafeInShell) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// unsafeInShell reports whether r is outside shlex's safe set
// [A-Za-z0-9@%+=:,./_-].
func unsafeInShell(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("@%+=:,./_-", r)
}

// filterShellQuote is the shell_quote filter: {{ dag_run.conf.x | shell_quote }}.
// Values that are not strings are quoted as {{ }} would print them.
func filterShellQuote(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) > 0 || len(params.KwArgs) > 0 {
		return exec.AsValue(exec.ErrInvalidCall(errors.New("shell_quote takes no arguments")))
	}
	var text string
	switch x := in.Interface().(type) {
	case string:
		text = x
	case float64:
		text = pyFloat(x)
	case nil:
		text = "None"
	default:
		text = printed(in)
	}
	return exec.AsValue(shellQuote(text))
}

package check

import (
	"fmt"
	"io"
	"strings"
)

// Symbols linkerd check prints.
const (
	okMark   = "√"
	warnMark = "‼"
	errMark  = "×"
)

// WriteText prints the report as `linkerd check` does.
func WriteText(w io.Writer, rep Report) error {
	var b strings.Builder
	for i, c := range rep.Categories {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s\n%s\n", c.Name, strings.Repeat("-", len(c.Name)))
		for _, r := range c.Results {
			mark := okMark
			switch r.Status {
			case Warning:
				mark = warnMark
			case Error:
				mark = errMark
			}
			fmt.Fprintf(&b, "%s %s\n", mark, r.Description)
			if r.Message != "" {
				for _, line := range strings.Split(r.Message, "\n") {
					fmt.Fprintf(&b, "    %s\n", line)
				}
			}
			if r.Hint != "" {
				fmt.Fprintf(&b, "    hint: %s\n", r.Hint)
			}
		}
	}
	result := okMark
	if !rep.Success {
		result = errMark
	} else if rep.hasWarnings() {
		result = warnMark
	}
	fmt.Fprintf(&b, "\nStatus check results are %s\n", result)
	_, err := io.WriteString(w, b.String())
	return err
}

func (rep Report) hasWarnings() bool {
	for _, c := range rep.Categories {
		for _, r := range c.Results {
			if r.Status == Warning {
				return true
			}
		}
	}
	return false
}

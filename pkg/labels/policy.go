package labels

import (
	"math"
	"strconv"
	"strings"
)

// awakeDuring parses the keep-warm schedule; the error names the window
// and the part of it that is wrong.
func (p *parser) awakeDuring(v string) {
	s, err := ParseSchedule(v)
	if err != nil {
		p.fail(KeyAwakeDuring, "%v", err)
		return
	}
	p.spec.AwakeDuring = s
}

// group parses a group name: the same rules as a container name, so that
// it reads well in logs, metrics and the API.
func (p *parser) group(v string) {
	if !validContainerName(v) {
		p.fail(KeyGroup, "not a group name: want [a-zA-Z0-9][a-zA-Z0-9_.-]*")
		return
	}
	p.spec.Group = v
}

// busyCPU parses a percentage such as "10%" or "10" (percent of one CPU).
func (p *parser) busyCPU(v string) {
	n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, "%")), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || n <= 0 || n > 100000 {
		p.fail(KeyBusyCPU, "not a CPU percentage: want a number above 0, like 10%%")
		return
	}
	p.spec.BusyCPU = n
}

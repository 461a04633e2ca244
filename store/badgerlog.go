package store

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// badgerLogger routes Badger's log to logrus. Badger's INFO lines are routine
// (compactions, memtable flushes) and go to DEBUG; its DEBUG goes to TRACE.
type badgerLogger struct{ log *logrus.Entry }

func (l badgerLogger) Errorf(f string, a ...any)   { l.logf(logrus.ErrorLevel, f, a) }
func (l badgerLogger) Warningf(f string, a ...any) { l.logf(logrus.WarnLevel, f, a) }
func (l badgerLogger) Infof(f string, a ...any)    { l.logf(logrus.DebugLevel, f, a) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.logf(logrus.TraceLevel, f, a) }

func (l badgerLogger) logf(level logrus.Level, f string, a []any) {
	if !l.log.Logger.IsLevelEnabled(level) {
		return
	}
	l.log.Log(level, strings.TrimSpace(fmt.Sprintf(f, a...)))
}

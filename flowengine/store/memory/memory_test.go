package memory_test

import (
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	"github.com/flowgate/flowgate/flowengine/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, c *flowengine.ManualClock) flowengine.Store { return memory.New(c) })
}

package termsafe_test

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

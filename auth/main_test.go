package auth

import (
	"testing"

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

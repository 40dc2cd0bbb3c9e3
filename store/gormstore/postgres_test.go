package gormstore_test

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
	"github.com/keygate/keygate/store/storetest"
)

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, patient(gormstore.Options{DatabaseURL: dbtest.PostgresURL(t)}))
	})
}

func TestPostgresReopenIsIdempotent(t *testing.T) {
	testReopen(t, gormstore.Options{DatabaseURL: dbtest.PostgresURL(t)}, gormstore.DialectPostgres)
}

// Replicas starting at once must not race on creating the schema.
func TestPostgresConcurrentOpen(t *testing.T) {
	url := dbtest.PostgresURL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := gormstore.Open(t.Context(), gormstore.Options{DatabaseURL: url, MaxOpenConns: 2})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestPostgresPoolOptions(t *testing.T) {
	s := openT(t, gormstore.Options{DatabaseURL: dbtest.PostgresURL(t), MaxOpenConns: 3})
	require.Equal(t, 3, s.DB().Stats().MaxOpenConnections)
	require.Equal(t, gormstore.DialectPostgres, s.Dialect())
	require.NoError(t, s.Ping(t.Context()))
}

func TestPostgresDownIsUnavailable(t *testing.T) {
	// A port nobody listens on: take a free one and release it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	for _, dsn := range []string{
		fmt.Sprintf("postgres://postgres:hunter2@127.0.0.1:%d/test?sslmode=disable&connect_timeout=2", port),
		fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=hunter2 dbname=test sslmode=disable connect_timeout=2", port),
	} {
		_, err = gormstore.Open(t.Context(), gormstore.Options{DatabaseURL: dsn})
		require.ErrorIs(t, err, store.ErrUnavailable)
		require.NotContains(t, err.Error(), "hunter2")
	}
}

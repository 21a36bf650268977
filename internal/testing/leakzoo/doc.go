// Package leakzoo registers load-balancing policies that each leak in one
// way a real policy has leaked, so that tests can show the soak, leaktest
// and leakproof_guard catching every shape. Import it only from tests.
//
// Every policy is a small round robin written the way users write them,
// correct but for its one documented bug; Entries lists them with the
// incident each is modelled on.
package leakzoo

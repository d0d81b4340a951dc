package dag

// TestRegistry exposes the tests' operator registry to the external test
// package, which checks it against the real operators' schemas.
var TestRegistry = testRegistry

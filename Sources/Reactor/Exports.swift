// SharedBytes moved to RillBytes (the base module of pure byte types); Reactor re-exports it so that
// code importing Reactor alone keeps compiling.
@_exported import RillBytes

// Package bugreport writes a gzipped tarball of what a maintainer needs to
// debug an installation — config dumps, logs, metrics, check output,
// versions and cluster objects — with private keys and tokens redacted.
package bugreport

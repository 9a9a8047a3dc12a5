// Package install puts the weft-cni plugin on a node and keeps it there:
// it copies the plugin binary into the CNI bin dir, appends weft-cni (with
// the settings it needs) to the primary CNI network configuration, and
// watches the conf dir so that when the primary CNI rewrites its file, the
// entry is put back. Uninstall removes the entry and the binary.
//
// The primary configuration is the one the container runtime uses: the
// first file of the conf dir in lexical order with extension .conflist,
// .conf or .json (libcni's rule), unless Config.ConfFile names one. A
// single-plugin .conf is converted to a .conflist holding the original
// plugin followed by weft-cni. Every other plugin and its position stay as
// they were; files are replaced atomically and rewritten only when their
// content must change, so Install is idempotent.
//
// The conf dir is polled (Config.PollInterval, 1 s by default) rather than
// watched with inotify: it is one small directory, and polling also catches
// replacements by rename and files on bind-mounted hostPaths.
package install

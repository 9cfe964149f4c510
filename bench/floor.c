/* bench/floor.c: floor ROOTFS CMD [ARG...]: the C launcher floor of bench/run.sh's S1.
 *
 * The least a container launcher does: clone into new mount, uts, ipc, pid and net namespaces;
 * in the child (pid 1 of its pid namespace) make / recursively private, bind ROOTFS onto itself,
 * mount proc at ROOTFS/proc (nosuid, nodev, noexec), pivot_root into ROOTFS (pivot_root(".", ".")
 * then a lazy unmount of the old root stacked on "."), chdir / and execv CMD. The parent waits
 * and exits with the child's status (128+N when signal N killed it). No /dev beyond what ROOTFS
 * has, no hostname, no cgroups, no capabilities or seccomp: only the work every runtime in S1
 * has to do. Any failing call prints one line and exits 125.
 *
 * Build: gcc -O2 -static -o floor bench/floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL 125

static char *rootfs;
static char **cmd;
static char proc_path[4096];
/* The child's stack: without CLONE_VM the child gets its own copy of this memory. */
static char child_stack[64 * 1024] __attribute__((aligned(16)));

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	_exit(FAIL);
}

static int child(void *arg)
{
	(void)arg;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		die("make / private");
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0)
		die("bind the rootfs onto itself");
	if (mount("proc", proc_path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		die("mount proc");
	if (chdir(rootfs) != 0)
		die("chdir to the rootfs");
	if (syscall(SYS_pivot_root, ".", ".") != 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) != 0)
		die("unmount the old root");
	if (chdir("/") != 0)
		die("chdir /");
	execv(cmd[0], cmd);
	die(cmd[0]);
	return FAIL;
}

int main(int argc, char **argv)
{
	int status, n;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: floor ROOTFS CMD [ARG...]\n");
		return FAIL;
	}
	rootfs = argv[1];
	cmd = argv + 2;
	n = snprintf(proc_path, sizeof proc_path, "%s/proc", rootfs);
	if (n < 0 || (size_t)n >= sizeof proc_path) {
		fprintf(stderr, "floor: %s: path too long\n", rootfs);
		return FAIL;
	}
	pid = clone(child, child_stack + sizeof child_stack,
		    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | SIGCHLD,
		    NULL);
	if (pid < 0)
		die("clone");
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

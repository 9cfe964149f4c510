/* bench/pair.c: pair ROUNDS FILE: run commands round-robin, print every round's times as JSON.
 *
 * FILE has one command per line, `NAME<TAB>ARGV`, ARGV split on spaces (no quoting; the
 * program is looked up in PATH). Each round runs every command once, in an order that rotates
 * from round to round, and times it from posix_spawnp to waitpid. The output,
 * `{"names":[...],"seconds":[[round 0's times, in the order of names], ...]}`, lets the caller
 * take paired ratios: one command's time over another's in the same round.
 *
 * Why: hyperfine runs each command's runs in one block, so on a virtual machine whose speed
 * drifts (other guests, steal time) two medians taken a minute apart differ by more than the
 * difference being measured; a ratio within one round sees the same machine on both sides.
 * Ten warm-up rounds are not counted. A command that exits non-zero stops the run (exit 1).
 * Names must not hold a double quote or a backslash (they are written into the JSON as they
 * are).
 *
 * Build: gcc -O2 -o pair bench/pair.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_CMDS 16
#define MAX_ARGS 64
#define WARMUP 10

extern char **environ;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	char line[8192], *names[MAX_CMDS], **cmds[MAX_CMDS];
	double *times[MAX_CMDS];
	int rounds, k = 0;
	FILE *f;

	if (argc != 3 || (rounds = atoi(argv[1])) < 4) {
		fprintf(stderr, "usage: pair ROUNDS FILE (ROUNDS >= 4)\n");
		return 2;
	}
	if (!(f = fopen(argv[2], "r"))) {
		fprintf(stderr, "pair: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	while (fgets(line, sizeof line, f)) {
		char *tab, *arg, **av;
		int i = 0;
		line[strcspn(line, "\n")] = 0;
		if (!*line)
			continue;
		if (k == MAX_CMDS || !(tab = strchr(line, '\t'))) {
			fprintf(stderr, "pair: bad line (NAME<TAB>ARGV, at most %d): %s\n", MAX_CMDS, line);
			return 2;
		}
		*tab = 0;
		names[k] = strdup(line);
		av = calloc(MAX_ARGS + 1, sizeof *av);
		for (arg = strtok(tab + 1, " "); arg && i < MAX_ARGS; arg = strtok(NULL, " "))
			av[i++] = strdup(arg);
		if (!names[k] || !i) {
			fprintf(stderr, "pair: bad line: %s\n", line);
			return 2;
		}
		cmds[k] = av;
		times[k++] = calloc(rounds, sizeof(double));
	}
	fclose(f);
	if (k < 2) {
		fprintf(stderr, "pair: need at least two commands\n");
		return 2;
	}
	for (int r = -WARMUP; r < rounds; r++) {
		for (int j0 = 0; j0 < k; j0++) {
			int j = (j0 + r + WARMUP) % k, status;
			pid_t pid;
			double start = now_us();
			if ((errno = posix_spawnp(&pid, cmds[j][0], NULL, NULL, cmds[j], environ))) {
				fprintf(stderr, "pair: %s: %s\n", cmds[j][0], strerror(errno));
				return 1;
			}
			while (waitpid(pid, &status, 0) < 0)
				if (errno != EINTR) {
					perror("pair: waitpid");
					return 1;
				}
			if (status) {
				fprintf(stderr, "pair: %s: exit status %#x\n", names[j], status);
				return 1;
			}
			if (r >= 0)
				times[j][r] = (now_us() - start) / 1e6;
		}
	}
	printf("{\"names\":[");
	for (int j = 0; j < k; j++)
		printf("%s\"%s\"", j ? "," : "", names[j]);
	printf("],\"seconds\":[");
	for (int r = 0; r < rounds; r++) {
		printf("%s[", r ? "," : "");
		for (int j = 0; j < k; j++)
			printf("%s%.9f", j ? "," : "", times[j][r]);
		printf("]");
	}
	printf("]}\n");
	return 0;
}

/*
 * fv_fuzz.h - the `fv` argument parser as a library, for the fuzz harness
 * fuzz/fuzz_fv_args.c only.  Not used by the fv binary: fuzz/fuzz.cmake and
 * fuzz/replay.cmake compile tools/fv.c a second time with -DFV_FUZZ_PARSER,
 * -Dmain=fv_cli_main and `-include tools/fv_fuzz.h` (so these prototypes
 * come first), which adds fv_fuzz_parse_args at the end of fv.c and renames
 * its main.  The default build of tools/fv.c is unchanged.
 */
#ifndef FV_FUZZ_H
#define FV_FUZZ_H

/* fv's main, renamed (never called by the harness). */
int fv_cli_main(int argc, char **argv);

/* Parse argv as fv would, without opening anything: -1 when the command
 * line is complete and fv would go on to run the command, else the exit
 * code fv would return (0 after --help or --version, 2 for a usage error).
 * Aborts if it would run with an incomplete command line.  Messages go to
 * the stdout/stderr streams. */
int fv_fuzz_parse_args(int argc, char **argv);

#endif

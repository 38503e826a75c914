/* latency_jack.h: the JACK rig of `parley-bench latency` (bench_latency.c): a private JACK server with
 * the dummy driver, started and always stopped by the bench, and two JACK clients of the bench's own,
 * a signal injector and a recorder, running in the server's graph beside the engines' PortAudio client.
 *
 * Both taps run in the same graph cycle as the engines' callbacks and index their samples by the
 * cycle's frame time (jack_last_frame_time), so injection and recording share one sample clock: the
 * recording y[i] is what reached the recorder's port at the graph time the injector played x[i].
 *
 * Without libjack at build time (PARLEY_HAVE_JACK undefined) bench_jack_open says so and skips.
 * Bench code: the control functions run on the bench's main thread; the taps' process callbacks run
 * on libjack's thread and only copy samples and touch atomics. Not installed.
 */
#ifndef PARLEY_BENCH_LATENCY_JACK_H
#define PARLEY_BENCH_LATENCY_JACK_H

#include <stdbool.h>
#include <stddef.h>

#define BENCH_JACK_SERVER "parley-latbench"
#define BENCH_JACK_MAX_PORTS 64
#define BENCH_JACK_PORT_NAME 128

typedef struct bench_jack bench_jack;

/* Takes the server lock (/tmp/parley-latbench-jackd.lock, waits up to 30 s), starts
 * `jackd -n parley-latbench --no-realtime -d dummy -r 48000 -p period_frames` as a child that dies
 * with this process (PR_SET_PDEATHSIG), waits for it, points this process's libjack users at it
 * (JACK_DEFAULT_SERVER, JACK_NO_START_SERVER: PortAudio must initialise after this) and activates the
 * injector and recorder clients. Returns 0 and *out; 1 = skip (jackd not installed, or no libjack at
 * build time); -1 = failure. Both with a reason in why[0..cap). Everything is undone on failure. */
int bench_jack_open(int period_frames, bench_jack **out, char *why, size_t cap);

/* The full names of the input (inputs true) or output ports of other clients than the bench's and the
 * server's "system" that exist now. Returns how many (<= cap). */
int bench_jack_other_ports(bench_jack *j, bool inputs, char names[][BENCH_JACK_PORT_NAME], int cap);

/* Wires injector -> a_in and b_out -> recorder after removing every other connection of a_in, a_out,
 * b_in and b_out (PortAudio connects its ports to the system ports). 0 or -1 (why says which). */
int bench_jack_wire(bench_jack *j, const char *a_in, const char *a_out, const char *b_in, const char *b_out,
                    char *why, size_t cap);

/* From the next graph cycle on, injects x[0..n) (x borrowed until done) and records n samples of the
 * same frame times into y[0..n) (borrowed, zeroed first). */
void bench_jack_arm(bench_jack *j, const float *x, float *y, size_t n);
/* Whether the recording of the armed span is complete. */
bool bench_jack_done(bench_jack *j);
/* What the server reports for the dummy card: the latency range maximum of system:capture_1 (sound at
 * the input to its cycle) and system:playback_1 (cycle to sound at the output), in frames. */
void bench_jack_system_latency(bench_jack *j, unsigned *capture_frames, unsigned *playback_frames);
/* Graph cycles seen by the recorder, and xruns the server reported. */
void bench_jack_counts(bench_jack *j, unsigned long *cycles, unsigned long *xruns);

/* Closes the clients, stops the server (SIGTERM, then SIGKILL after 2 s), removes its /dev/shm
 * leftovers, restores the environment and releases the lock. NULL is ignored. */
void bench_jack_close(bench_jack *j);

#endif

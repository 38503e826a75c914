/* stages_gst.c: for parley-bench stages, the CPU cost of a GStreamer send chain doing the work parley's
 * send chain does (echo cancellation and noise suppression with webrtcdsp and its echo probe; Opus as
 * parley configures it: 32 kbit/s in 10 ms frames, complexity 9, voice, in-band FEC for 10 % loss, DTX,
 * automatic bandwidth; RTP; SRTP AES-CM/HMAC-SHA1-80) on the same
 * signal: gst-launch-1.0 runs the chain over a WAV file as fast as it can, and again without the
 * processing elements (the same file reading, format conversion and probe branch); the difference in
 * the child's CPU time (user + system, from wait4), divided by the frames, is the chain's cost per
 * 10 ms frame. Main thread of parley-bench; runs child processes; not part of libparley. */
#define _GNU_SOURCE /* wait4 */
#include <sndfile.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/stages_gst.h"

extern char **environ;

static const char *const SRC_CAPS = "audio/x-raw,format=S16LE,rate=48000,channels=1";

/* The child's CPU time in ns, or -1 (not run, or it failed). */
static double child_cpu_ns(char *const argv[]) {
  pid_t pid;
  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) return -1;
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

/* gst-launch-1.0 -q MAIN-BRANCH PROBE-BRANCH, with or without the processing elements. */
static double run_pipeline(const char *wav, bool processing) {
  char main_branch[1024], probe_branch[512];
  if (processing)
    snprintf(main_branch, sizeof main_branch,
             "filesrc location=%s ! wavparse ! audioconvert ! %s ! webrtcdsp echo-cancel=true "
             "noise-suppression=true gain-control=false ! opusenc frame-size=10 bitrate=32000 complexity=9 "
             "audio-type=voice inband-fec=true packet-loss-percentage=10 dtx=true bandwidth=auto ! rtpopuspay ! srtpenc key=000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D "
             "rtp-cipher=aes-128-icm rtp-auth=hmac-sha1-80 rtcp-cipher=aes-128-icm rtcp-auth=hmac-sha1-80 "
             "! fakesink sync=false",
             wav, SRC_CAPS);
  else
    snprintf(main_branch, sizeof main_branch, "filesrc location=%s ! wavparse ! audioconvert ! %s ! fakesink sync=false",
             wav, SRC_CAPS);
  snprintf(probe_branch, sizeof probe_branch, "filesrc location=%s ! wavparse ! audioconvert ! %s ! %s fakesink sync=false",
           wav, SRC_CAPS, processing ? "webrtcechoprobe !" : "");
  /* gst-launch takes the pipeline as separate words: split at spaces (no element here has one). */
  char text[1600];
  snprintf(text, sizeof text, "gst-launch-1.0 -q %s %s", main_branch, probe_branch);
  char *argv[256];
  int n = 0;
  for (char *tok = strtok(text, " "); tok && n < 255; tok = strtok(NULL, " ")) argv[n++] = tok;
  argv[n] = NULL;
  return child_cpu_ns(argv);
}

int bench_gst_send_chain(const float *voice, size_t frames, size_t frame_samples, double *ns_per_frame, char *why,
                         size_t why_cap) {
  char wav[] = "/tmp/parley-bench-gst-XXXXXX";
  int fd = mkstemp(wav);
  if (fd < 0) {
    snprintf(why, why_cap, "no temporary file");
    return -1;
  }
  SF_INFO info = {.samplerate = 48000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
  SNDFILE *f = sf_open_fd(fd, SFM_WRITE, &info, SF_TRUE);
  bool written = f && sf_writef_float(f, voice, (sf_count_t)(frames * frame_samples)) == (sf_count_t)(frames * frame_samples);
  if (f) sf_close(f);
  int rc = -1;
  if (!written) {
    snprintf(why, why_cap, "cannot write the input WAV");
  } else {
    /* Best of three of each: other processes only ever add CPU time (cache and frequency effects). */
    double full = -1, base = -1;
    for (int i = 0; i < 3; i++) {
      double a = run_pipeline(wav, true), b = run_pipeline(wav, false);
      if (a < 0 || b < 0) break;
      if (full < 0 || a < full) full = a;
      if (base < 0 || b < base) base = b;
    }
    if (full < 0 || base < 0) {
      snprintf(why, why_cap, "gst-launch-1.0 with webrtcdsp, opusenc and srtpenc did not run (GStreamer's "
                             "good and bad plugins installed?)");
    } else {
      *ns_per_frame = (full - base) / (double)frames;
      rc = 0;
    }
  }
  unlink(wav);
  return rc;
}

// webrtc_ap.cc: the WebRTC audio processing module (Debian's webrtc-audio-processing 0.3, C++) as a
// reference canceller for `parley-bench echo`, behind a C function. Bench only: libparley never links it.
// Configured as a desktop browser runs it: AEC with the extended filter and delay-agnostic mode (it
// finds the bulk delay itself), high-pass filter, noise suppression at its default level.
#include <cstddef>
#include <memory>
#include <vector>

#include <webrtc/modules/audio_processing/include/audio_processing.h>

extern "C" int bench_webrtc_ap_run(const float *far, const float *mic, float *out, size_t total, int rate,
                                   int frame);

extern "C" int bench_webrtc_ap_run(const float *far, const float *mic, float *out, size_t total, int rate,
                                   int frame) {
  webrtc::Config config;
  config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(true));
  config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(true));
  std::unique_ptr<webrtc::AudioProcessing> apm(webrtc::AudioProcessing::Create(config));
  if (!apm) return -1;
  if (apm->echo_cancellation()->Enable(true) != 0 || apm->high_pass_filter()->Enable(true) != 0 ||
      apm->noise_suppression()->Enable(true) != 0)
    return -1;
  webrtc::StreamConfig stream(rate, 1, false);
  std::vector<float> rev(static_cast<size_t>(frame)), cap(static_cast<size_t>(frame));
  for (size_t i = 0; i + static_cast<size_t>(frame) <= total; i += static_cast<size_t>(frame)) {
    const float *r_src[1] = {far + i};
    float *r_dst[1] = {rev.data()};
    if (apm->ProcessReverseStream(r_src, stream, stream, r_dst) != 0) return -1;
    apm->set_stream_delay_ms(0);
    const float *c_src[1] = {mic + i};
    float *c_dst[1] = {out + i};
    if (apm->ProcessStream(c_src, stream, stream, c_dst) != 0) return -1;
  }
  return 0;
}

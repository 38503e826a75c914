/* fuzz_rtcp.c: libFuzzer target for the compound RTCP parser. Checks the summary's counts stay within
 * their arrays and that a parsed compound's essentials survive a rebuild. */
#include "transport/rtcp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__rtcp_info in;
  if (parley__rtcp_parse_compound(data, size, &in) != 0) return 0;
  if (size % 4 != 0 || in.n_packets == 0) abort();
  if (in.n_blocks > PARLEY__RTCP_MAX_BLOCKS || in.n_bye > PARLEY__RTCP_MAX_BYE) abort();
  if (in.cname_len > PARLEY__RTCP_MAX_TEXT || in.bye_reason_len > PARLEY__RTCP_MAX_TEXT) abort();
  if (in.cname[in.cname_len] != '\0' || in.bye_reason[in.bye_reason_len] != '\0') abort();

  /* Rebuild from what was parsed (when it is buildable) and parse again. */
  if (in.has_cname && in.cname_len > 0 && in.cname_len == strlen(in.cname) &&
      in.bye_reason_len == strlen(in.bye_reason)) {
    parley__rtcp_compound_desc d = {.ssrc = in.ssrc,
                                    .is_sender = in.has_sr,
                                    .sender = in.sender,
                                    .blocks = in.blocks,
                                    .n_blocks = in.n_blocks,
                                    .cname = in.cname,
                                    .bye = in.has_bye,
                                    .bye_reason = in.bye_reason_len ? in.bye_reason : NULL};
    uint8_t out[2048];
    int n = parley__rtcp_build_compound(&d, out, sizeof out);
    if (n < 0) abort();
    parley__rtcp_info again;
    if (parley__rtcp_parse_compound(out, (size_t)n, &again) != 0) abort();
    if (again.n_blocks != in.n_blocks || again.cname_len != in.cname_len) abort();
    for (size_t i = 0; i < in.n_blocks; i++)
      if (again.blocks[i].cumulative_lost != in.blocks[i].cumulative_lost) abort();
    if (in.has_sr && again.sender.ntp != in.sender.ntp) abort();
  }
  return 0;
}

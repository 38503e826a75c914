# wav-lib.sh: WAV helpers for the shell tests (sourced; coreutils and awk only). Canonical 16-bit PCM
# WAVs, header 44 bytes, as parley writes them.

# Peak absolute 16-bit sample of a canonical PCM WAV (header 44 bytes), with coreutils and awk only.
wav_peak() {
  od -An -v -td2 -j44 "$1" | awk '{for (i = 1; i <= NF; i++) {v = $i < 0 ? -$i : $i; if (v > m) m = v}} END {print m + 0}'
}
# 0 if the RIFF size field matches the file size (the header was finalised).
wav_final() {
  size=$(wc -c < "$1")
  riff=$(od -An -v -tu4 -j4 -N4 "$1" | tr -d ' ')
  [ "$size" -ge 44 ] && [ "$riff" -eq $((size - 8)) ]
}
# wav_tone FILE SECONDS: a steady 48 kHz mono 16-bit two-tone (440 + 1130 Hz, each 0.2 of full scale).
wav_tone() {
  LC_ALL=C awk -v secs="$2" '
    function u32(v) {printf "%c%c%c%c", v % 256, int(v / 256) % 256, int(v / 65536) % 256, int(v / 16777216) % 256}
    function u16(v) {printf "%c%c", v % 256, int(v / 256) % 256}
    BEGIN {
      n = int(48000 * secs); pi = atan2(0, -1)
      printf "RIFF"; u32(36 + 2 * n); printf "WAVEfmt "; u32(16); u16(1); u16(1); u32(48000); u32(96000); u16(2); u16(16)
      printf "data"; u32(2 * n)
      for (i = 0; i < n; i++) {
        v = int(6554 * (sin(2 * pi * 440 * i / 48000) + sin(2 * pi * 1130 * i / 48000)))
        u16(v < 0 ? v + 65536 : v)
      }
    }' > "$1"
}
# RMS in dBFS of each WIN-sample window of a canonical 16-bit mono WAV, one per line, from sample SKIP
# (default 0): wav_windows FILE WIN [SKIP].
wav_windows() {
  od -An -v -td2 -j$((44 + 2 * ${3:-0})) "$1" | awk -v w="$2" '{for (i = 1; i <= NF; i++) {s += $i * $i;
    if (++k == w) {print (s > 0 ? 10 * log(s / k / 32768 / 32768) / log(10) : -200); s = 0; k = 0}}}'
}

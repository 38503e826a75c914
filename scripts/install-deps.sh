#!/bin/sh
# Installs the Debian 12 packages parley needs to build, test and run, only those not yet installed.
set -eu
pkgs="build-essential cmake pkg-config git libopus-dev libspeexdsp-dev portaudio19-dev libsrtp2-dev
libcriterion-dev libssl-dev zlib1g-dev libsndfile1-dev clang libclang-rt-14-dev jackd2
libjack-jackd2-dev libmicrohttpd-dev libcurl4-openssl-dev curl
python3 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad python3-aiortc python3-aioice iproute2 procps openssl
libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev gstreamer1.0-nice gir1.2-nice-0.1 coturn
libwebrtc-audio-processing-dev python3-numpy nftables
gir1.2-gst-plugins-bad-1.0 janus"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages:$missing (run as root, or install them yourself)" >&2
  exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q
# jackd2 asks about real-time priority at install; answer no, we only use its dummy driver.
echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $missing

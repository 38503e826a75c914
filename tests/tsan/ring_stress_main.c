/* ring_stress_main.c: the ring stress as a plain program, for ThreadSanitizer runs in .ci/run.
 * Exit 0 when every item arrived in order and intact. Optional argument: the item count. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/ring_stress.h"

int main(int argc, char **argv) {
  uint64_t items = argc > 1 ? strtoull(argv[1], NULL, 10) : RING_STRESS_ITEMS;
  uint64_t bad = 0, moved = ring_stress_run(items, &bad);
  printf("ring stress: %llu items moved, %llu bad\n", (unsigned long long)moved, (unsigned long long)bad);
  return moved == items && bad == 0 ? 0 : 1;
}

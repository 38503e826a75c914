/* ranking_stress_main.c: the speaker-ranking seqlock stress as a plain program, for ThreadSanitizer
 * runs in .ci/run. Exit 0 when the reader read rankings and none of them was torn. Optional argument:
 * the number of publications. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/ranking_stress.h"

int main(int argc, char **argv) {
  uint64_t publications = argc > 1 ? strtoull(argv[1], NULL, 10) : RANKING_STRESS_PUBLICATIONS;
  uint64_t torn = 0, reads = ranking_stress_run(publications, &torn);
  printf("ranking stress: %llu publications, %llu read whole, %llu torn\n", (unsigned long long)publications,
         (unsigned long long)reads, (unsigned long long)torn);
  return reads > 0 && torn == 0 ? 0 : 1;
}

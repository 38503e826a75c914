/* error.c: messages and names for the PARLEY_E* codes. Stateless; any thread. */
#include "parley/parley.h"

const char *parley_strerror(int err) {
  switch (err) {
  case 0: return "success";
#define PARLEY__ERR_MSG(name, value, msg) case value: return msg;
  PARLEY_ERRNO_MAP(PARLEY__ERR_MSG)
#undef PARLEY__ERR_MSG
  default: return "unknown error";
  }
}

const char *parley_err_name(int err) {
  switch (err) {
  case 0: return "PARLEY_OK";
#define PARLEY__ERR_NAME(name, value, msg) case value: return "PARLEY_" #name;
  PARLEY_ERRNO_MAP(PARLEY__ERR_NAME)
#undef PARLEY__ERR_NAME
  default: return "PARLEY_EUNKNOWN";
  }
}

#define PARLEY__STR2(x) #x
#define PARLEY__STR(x) PARLEY__STR2(x)
const char *parley_version(void) {
  return PARLEY__STR(PARLEY_VERSION_MAJOR) "." PARLEY__STR(PARLEY_VERSION_MINOR) "." PARLEY__STR(
      PARLEY_VERSION_PATCH);
}

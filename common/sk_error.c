#include "common/sk_error.h"

static const struct {
	const char *name;
	const char *text;
} sk_err_table[SK_ERR_COUNT] = {
	[SK_OK] = {"ok", "success"},
	[SK_EINVAL] = {"einval", "invalid argument or malformed input"},
	[SK_EIO] = {"eio", "input/output error"},
	[SK_ECORRUPT] = {"ecorrupt", "data failed an integrity check"},
	[SK_EFULL] = {"efull", "no space left"},
	[SK_ETIMEDOUT] = {"etimedout", "timed out"},
	[SK_ENOMEM] = {"enomem", "out of memory"},
	[SK_ENOTFOUND] = {"enotfound", "not found"},
	[SK_EEXIST] = {"eexist", "already exists"},
	[SK_ECONFLICT] = {"econflict", "conflicts with the current state"},
	[SK_ERANGE] = {"erange", "value out of range"},
	[SK_EAGAIN] = {"eagain", "not ready, try again"},
	[SK_EBUSY] = {"ebusy", "resource busy"},
	[SK_ECLOSED] = {"eclosed", "closed"},
	[SK_EVERSION] = {"eversion", "unsupported version"},
	[SK_ECONFIG] = {"econfig", "configuration error"},
};

const char *sk_strerror(sk_err err)
{
	if ((unsigned)err >= SK_ERR_COUNT)
		return "unknown error";
	return sk_err_table[err].text;
}

const char *sk_errname(sk_err err)
{
	if ((unsigned)err >= SK_ERR_COUNT)
		return "eunknown";
	return sk_err_table[err].name;
}

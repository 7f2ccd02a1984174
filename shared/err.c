/* err.c - first-error-wins error records (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

void err_init(struct err *e)
{
	e->kind = ERR_OK;
	e->msg[0] = '\0';
}

void err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->kind != ERR_OK)
		return;
	e->kind = kind;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

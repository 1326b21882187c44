/* LD_PRELOAD shim for tests/sim_kamailio.rs.
 *
 * Kamailio's sms module (libsms_modem.c, put_command) calls
 * ioctl(fd, TIOCMGET, &status) before every write and waits for TIOCM_CTS; it
 * has no parameter to skip that check. The Linux PTY driver implements no
 * modem-status lines, so TIOCMGET on our simulated modem's PTY fails with
 * ENOTTY, `status` stays uninitialised and the module gives up with "Modem is
 * not clear to send" without writing anything. This shim answers TIOCMGET the
 * way a serial port with a modem attached would (CTS, DSR, CD asserted) when,
 * and only when, the real ioctl fails with ENOTTY. Everything else goes to libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>

typedef int (*ioctl_fn)(int, unsigned long, ...);

int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;
	static ioctl_fn real;
	int rc;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	rc = real(fd, request, arg);
	if (rc == -1 && errno == ENOTTY && request == TIOCMGET && arg) {
		*(int *)arg = TIOCM_CTS | TIOCM_DSR | TIOCM_CAR | TIOCM_RTS | TIOCM_DTR;
		return 0;
	}
	return rc;
}

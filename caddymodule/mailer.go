package caddymodule

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
)

const defaultSMTPTimeout = 10 * time.Second

// smtpMailer sends the email stage's mail through the configured SMTP server.
// Neither the password nor a message's body (it holds the link) is ever logged.
type smtpMailer struct {
	cfg     SMTPConfig
	from    string // envelope sender: the address of cfg.From
	timeout time.Duration
	logger  *zap.Logger
}

// mailer is the App's Mailer, or nil without an smtp block.
func (a *App) mailer() flowengine.Mailer {
	if a.SMTP == nil {
		return nil
	}
	return newSMTPMailer(*a.SMTP, a.logger.Named("smtp"))
}

func newSMTPMailer(cfg SMTPConfig, logger *zap.Logger) *smtpMailer {
	m := &smtpMailer{cfg: cfg, from: cfg.From, timeout: time.Duration(cfg.Timeout), logger: logger}
	if addr, err := mail.ParseAddress(cfg.From); err == nil {
		m.from = addr.Address
	}
	if m.timeout <= 0 {
		m.timeout = defaultSMTPTimeout
	}
	if m.cfg.Port == 0 {
		switch cfg.TLS {
		case "tls":
			m.cfg.Port = 465
		case "none":
			m.cfg.Port = 25
		default:
			m.cfg.Port = 587
		}
	}
	return m
}

// Send delivers one message, connecting and sending within the timeout.
func (m *smtpMailer) Send(ctx context.Context, msg flowengine.Mail) error {
	err := m.send(ctx, msg)
	if err != nil {
		m.logger.Error("sending mail failed", zap.String("server", m.addr()), zap.Error(err))
	}
	return err
}

func (m *smtpMailer) addr() string { return net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port)) }

func (m *smtpMailer) send(ctx context.Context, msg flowengine.Mail) error {
	body, err := m.compose(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	dialer := &net.Dialer{Timeout: m.timeout}
	conn, err := dialer.DialContext(ctx, "tcp", m.addr())
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.addr(), err)
	}
	// The deadline covers the whole conversation, so a server that accepts
	// and then stalls fails as quickly as one that is down.
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", m.addr(), err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tlsConfig := &tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12}
	var c *smtp.Client
	switch m.cfg.TLS {
	case "none":
		c = smtp.NewClient(conn)
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	default:
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			conn.Close()
			return fmt.Errorf("smtp %s: starttls: %w", m.addr(), err)
		}
	}
	defer c.Close()
	if m.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", m.cfg.Username, m.cfg.Password)); err != nil {
			return fmt.Errorf("smtp %s: authentication as %s: %w", m.addr(), m.cfg.Username, err)
		}
	}
	if err := c.SendMail(m.from, []string{msg.To}, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("smtp %s: %w", m.addr(), err)
	}
	_ = c.Quit()
	return nil
}

// compose builds a multipart/alternative message: plain text, then HTML.
func (m *smtpMailer) compose(msg flowengine.Mail) ([]byte, error) {
	if _, err := mail.ParseAddress(msg.To); err != nil {
		return nil, fmt.Errorf("recipient is not an email address")
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	hdr("From", m.cfg.From)
	hdr("To", msg.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+flowengine.NewID()+"@"+m.cfg.Host+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, text string }{{"text/plain", msg.Text}, {"text/html", msg.HTML}} {
		if part.text == "" {
			continue
		}
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.text)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

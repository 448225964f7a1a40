// Package s3store is the registry's Store on an S3-compatible bucket (AWS S3, MinIO, versitygw, Ceph RGW...),
// through minio-go: MODEL_DIR=s3://bucket/prefix. Config reads the standard AWS variables and files; the writes
// use the conditional requests S3 supports (If-None-Match: * to write a version once, If-Match: ETag to move a
// pointer), and a GET with If-None-Match makes an unchanged pointer's poll a 304 without a body. The registry's
// logic lives in package registry; this package only speaks S3.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
)

// IsURL reports whether a MODEL_DIR names a bucket rather than a folder.
func IsURL(dir string) bool { return strings.HasPrefix(dir, "s3://") }

// Config is where the bucket is and how to sign in. Zero values pick the defaults noted on each field.
type Config struct {
	Bucket string // required
	Prefix string // the keys' common prefix, without a trailing "/"; "" means the bucket's root
	// Endpoint is the S3 service's URL (http:// turns TLS off); "" means AWS S3 in Region.
	Endpoint string
	// Region is the bucket's region; "" lets the client ask the service.
	Region string
	// PathStyle addresses the bucket in the path (http://host/bucket/key), as most gateways need; false lets the
	// client choose (virtual-hosted style on AWS).
	PathStyle bool
	// Static credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); empty means the next source.
	AccessKey, SecretKey, SessionToken string
	// CredentialsFile and Profile select a shared credentials file's section (AWS_SHARED_CREDENTIALS_FILE,
	// AWS_PROFILE); "" means ~/.aws/credentials and "default".
	CredentialsFile, Profile string
}

// ConfigFromEnv reads the bucket and prefix from an s3://bucket/prefix address and the rest from the standard AWS
// variables: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, and S3_FORCE_PATH_STYLE. Web
// identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN: a Kubernetes service account's token, IRSA) and the
// instance's or container's role are tried when neither static credentials nor a credentials file give any.
func ConfigFromEnv(address string, getenv func(string) string) (Config, error) {
	u, err := url.Parse(address)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("MODEL_DIR %q: want s3://bucket/prefix", address)
	}
	c := Config{
		Bucket:          u.Host,
		Prefix:          strings.Trim(u.Path, "/"),
		Endpoint:        first(getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL")),
		Region:          first(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		AccessKey:       getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:       getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
		CredentialsFile: getenv("AWS_SHARED_CREDENTIALS_FILE"),
		Profile:         getenv("AWS_PROFILE"),
	}
	switch v := strings.ToLower(getenv("S3_FORCE_PATH_STYLE")); v {
	case "", "false", "0":
	case "true", "1":
		c.PathStyle = true
	default:
		return Config{}, fmt.Errorf("S3_FORCE_PATH_STYLE %q: want true or false", v)
	}
	return c, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Store is a registry.Store on one bucket and prefix.
type Store struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in "/"
}

// New makes the client; it sends no request (the bucket may be unreachable at start).
func New(c Config) (*Store, error) {
	if c.Bucket == "" {
		return nil, errors.New("s3store: no bucket")
	}
	host, secure := "s3.amazonaws.com", true
	if c.Region != "" {
		host = "s3." + c.Region + ".amazonaws.com"
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("AWS_ENDPOINT_URL %q: want http(s)://host[:port]", c.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	var chain []credentials.Provider
	if c.AccessKey != "" || c.SecretKey != "" {
		chain = append(chain, &credentials.Static{Value: credentials.Value{
			AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey, SessionToken: c.SessionToken, SignerType: credentials.SignatureV4}})
	}
	chain = append(chain,
		&credentials.FileAWSCredentials{Filename: c.CredentialsFile, Profile: c.Profile},
		// IAM covers web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), ECS task roles and EC2
		// instance profiles, in that order.
		&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
	)
	lookup := minio.BucketLookupAuto
	if c.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds: credentials.NewChainCredentials(chain), Secure: secure, Region: c.Region, BucketLookup: lookup,
		// The registry retries on its own schedule (the watch's backoff), and a start with the bucket down must
		// not wait through ten retries of each request before serving the embedded default.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	prefix := strings.Trim(c.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, bucket: c.Bucket, prefix: prefix}, nil
}

// maxObject bounds what a Get reads: no registry object is larger than a model file.
const maxObject = model.MaxFileBytes + 1

// Get implements registry.Store.
func (s *Store) Get(ctx context.Context, key, ifNoneMatch string) ([]byte, string, error) {
	var opts minio.GetObjectOptions
	if ifNoneMatch != "" {
		if err := opts.SetMatchETagExcept(ifNoneMatch); err != nil {
			return nil, "", err
		}
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if err != nil {
		return nil, "", s.wrap(key, err)
	}
	defer obj.Close()
	// The GET is sent at the first read (a Stat first would send a HEAD as well); its answer, a 304 or a 404
	// included, comes back as the read's error.
	data, err := io.ReadAll(io.LimitReader(obj, maxObject))
	if err != nil {
		if ifNoneMatch != "" && isNotModified(err) {
			return nil, ifNoneMatch, registry.ErrNotModified
		}
		return nil, "", s.wrap(key, err)
	}
	if len(data) >= maxObject {
		return nil, "", fmt.Errorf("s3store: %s is larger than any registry object", key)
	}
	info, err := obj.Stat() // from the GET's headers, no request
	if err != nil {
		return nil, "", s.wrap(key, err)
	}
	return data, info.ETag, nil
}

func isNotModified(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotModified || r.Code == "NotModified"
}

// Put implements registry.Store. The body is one PUT of the whole object with its MD5, which the service checks:
// a crash mid-upload leaves no object, never part of one.
func (s *Store) Put(ctx context.Context, key string, data []byte, ifMatch string) (string, error) {
	opts := minio.PutObjectOptions{SendContentMd5: true, DisableMultipart: true, ContentType: "application/octet-stream"}
	switch ifMatch {
	case registry.Always:
	case registry.IfAbsent:
		opts.SetMatchETagExcept("*")
	default:
		opts.SetMatchETag(ifMatch)
	}
	info, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return "", s.wrap(key, err)
	}
	return info.ETag, nil
}

// List implements registry.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]registry.Object, error) {
	var out []registry.Object
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix}) {
		if o.Err != nil {
			return nil, s.wrap(prefix, o.Err)
		}
		key := strings.TrimPrefix(o.Key, s.prefix)
		if strings.HasSuffix(key, "/") {
			continue
		}
		out = append(out, registry.Object{Key: key, Size: o.Size, ModTime: o.LastModified, ETag: o.ETag})
	}
	return out, nil
}

// Delete implements registry.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(s.wrap(key, err), fs.ErrNotExist) {
		return s.wrap(key, err)
	}
	return nil
}

// wrap turns S3's answers into the errors the registry tells apart, naming the object.
func (s *Store) wrap(key string, err error) error {
	r := minio.ToErrorResponse(err)
	where := "s3://" + path.Join(s.bucket, s.prefix+key)
	switch {
	case r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket", r.Code == "NoSuchKey":
		return fmt.Errorf("%s: %w", where, fs.ErrNotExist)
	case r.StatusCode == http.StatusPreconditionFailed, r.StatusCode == http.StatusConflict, r.Code == "PreconditionFailed":
		return fmt.Errorf("%s: %w", where, registry.ErrPrecondition)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// Default phishing-net safe sites (MailScanner's phishing.safe.sites.conf, trimmed): registrable
// domains of the click-tracking redirectors of the large bulk-mail services. A newsletter link
// whose text shows "www.shop.example" and whose target is "click.list-manage.com/…" is how those
// services work, not phishing; without this list nearly every newsletter would be "phishing".
//
// Deliberately NOT here: URL shorteners and open redirectors anyone can use anonymously (t.co,
// bit.ly, google.com/url…), which phishers use for exactly this trick. A domain's policy can add
// more (policy.html.phishingSafeSites). Only the registrable domain of a link's target is
// compared, so "ct.sendgrid.net" is covered by "sendgrid.net".
export const DEFAULT_PHISHING_SAFE_SITES: readonly string[] = [
  'list-manage.com', // Mailchimp
  'mailchimp.com',
  'mcsv.net',
  'sendgrid.net', // Twilio SendGrid (ct.sendgrid.net)
  'mandrillapp.com',
  'sparkpostmail.com',
  'createsend.com', // Campaign Monitor
  'cmail19.com',
  'cmail20.com',
  'rs6.net', // Constant Contact
  'exacttarget.com', // Salesforce Marketing Cloud
  'hubspotlinks.com',
  'hs-sites.com',
  'mjt.lu', // Mailjet
  'awstrack.me', // Amazon SES click tracking
  'mailgun.org',
  'sendibt2.com', // Brevo
  'sendibt3.com',
  // Link-rewriting security gateways: their wrappers point at themselves by design.
  'urldefense.com', // Proofpoint
  'cudasvc.com', // Barracuda
  'mimecastprotect.com',
];

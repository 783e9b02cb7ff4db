//! Meraki Dashboard API: floor plans (and their expiring image URLs) and the clients list.
